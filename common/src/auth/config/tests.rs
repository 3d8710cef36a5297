use super::*;

const ED25519_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\n\
    MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
    -----END PUBLIC KEY-----\n";

fn on(pairs: &[(&str, &str)]) -> AuthConfig {
    match AuthConfig::from_vars(&Vars::from_pairs(pairs.iter().copied())).unwrap() {
        AuthSetting::On(config) => config,
        other => panic!("{pairs:?}: {other:?}"),
    }
}

#[test]
fn without_any_auth_variable_authentication_is_off() {
    let setting = AuthConfig::from_vars(&Vars::from_pairs([])).unwrap();
    assert!(matches!(setting, AuthSetting::Unconfigured), "{setting:?}");
}

#[test]
fn an_issuer_alone_finds_its_keys_by_discovery() {
    let config = on(&[("AUTH_ISSUER", "https://id.example/realms/shop/")]);
    assert_eq!(config.issuer, "https://id.example/realms/shop/");
    let KeySource::Jwks {
        location: JwksLocation::Discovery(url),
        ..
    } = config.keys
    else {
        panic!("not discovery: {config:?}");
    };
    assert_eq!(
        url.as_str(),
        "https://id.example/realms/shop/.well-known/openid-configuration"
    );
    let local = on(&[("AUTH_ISSUER", "http://127.0.0.1:9000")]);
    assert!(matches!(local.keys, KeySource::Jwks { .. }));
}

#[test]
fn key_sources_over_plain_http_elsewhere_stop_the_service_naming_their_variable() {
    for (name, value) in [
        ("AUTH_ISSUER", "http://id.example"),
        ("AUTH_ISSUER", "shop"),
        ("AUTH_JWKS_URL", "http://id.example/jwks"),
    ] {
        let mut pairs = vec![(name, value)];
        if name == "AUTH_JWKS_URL" {
            pairs.push(("AUTH_ISSUER", "https://id.example"));
        }
        let error = AuthConfig::from_vars(&Vars::from_pairs(pairs)).unwrap_err();
        assert_eq!(error.name, name, "{value}: {error}");
    }
    let local = on(&[
        ("AUTH_JWKS_URL", "http://localhost:8080/jwks"),
        ("AUTH_ISSUER", "https://id.example"),
    ]);
    assert!(matches!(
        local.keys,
        KeySource::Jwks {
            location: JwksLocation::Url(_),
            ..
        }
    ));
}

#[test]
fn auth_disabled_true_turns_it_off_whatever_else_is_set() {
    let vars = Vars::from_pairs([
        ("AUTH_DISABLED", "true"),
        ("AUTH_ISSUER", "https://id.example"),
        ("AUTH_JWKS_URL", "https://id.example/jwks"),
    ]);
    let setting = AuthConfig::from_vars(&vars).unwrap();
    let AuthSetting::Disabled { ignored } = setting else {
        panic!("{setting:?}");
    };
    assert_eq!(ignored, ["AUTH_JWKS_URL", "AUTH_ISSUER"]);
    let off = AuthConfig::from_vars(&Vars::from_pairs([
        ("AUTH_DISABLED", "false"),
        ("AUTH_ISSUER", "https://id.example"),
    ]))
    .unwrap();
    assert!(off.config().is_some());
    for value in ["yes", "1", "TRUE"] {
        let error =
            AuthConfig::from_vars(&Vars::from_pairs([("AUTH_DISABLED", value)])).unwrap_err();
        assert_eq!(error.name, "AUTH_DISABLED", "{value}");
    }
}

#[test]
fn a_key_source_without_an_issuer_names_auth_issuer() {
    for (name, value) in [
        ("AUTH_JWKS_URL", "https://id.example/jwks"),
        ("AUTH_PUBLIC_KEY", ED25519_PUBLIC),
    ] {
        let error = AuthConfig::from_vars(&Vars::from_pairs([(name, value)])).unwrap_err();
        assert_eq!(error.name, "AUTH_ISSUER", "{error}");
    }
}

#[test]
fn a_pem_key_and_the_default_audience_are_read() {
    let config = on(&[
        ("AUTH_PUBLIC_KEY", ED25519_PUBLIC),
        ("AUTH_ISSUER", "https://id.example"),
    ]);
    assert_eq!(config.audience, "orders-api");
    assert!(matches!(config.keys, KeySource::Pem(ref set) if set.len() == 1));
}

#[test]
fn bad_values_name_their_variable() {
    for (name, value) in [
        (
            "AUTH_PUBLIC_KEY",
            "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----",
        ),
        ("AUTH_PUBLIC_KEY", "/no/such/key.pem"),
        ("AUTH_JWKS_URL", "ftp://id.example/jwks"),
        ("AUTH_JWKS_URL", "not a url"),
        ("AUTH_JWKS_REFRESH_SECS", "0"),
    ] {
        let mut pairs = vec![(name, value), ("AUTH_ISSUER", "https://id.example")];
        if name == "AUTH_JWKS_REFRESH_SECS" {
            pairs.push(("AUTH_JWKS_URL", "https://id.example/jwks"));
        }
        let error = AuthConfig::from_vars(&Vars::from_pairs(pairs)).unwrap_err();
        assert_eq!(error.name, name, "{value}: {error}");
    }
    let both = Vars::from_pairs([
        ("AUTH_PUBLIC_KEY", ED25519_PUBLIC),
        ("AUTH_JWKS_URL", "https://id.example/jwks"),
        ("AUTH_ISSUER", "https://id.example"),
    ]);
    assert!(AuthConfig::from_vars(&both).is_err());
}
