//! Defaults, bad values and redaction of the common settings.

use super::*;
use crate::amqp::topology::Layout;

fn no_queues(_exchange: &str) -> Layout {
    Layout {
        consumers: vec![],
        copies: vec![],
    }
}

/// A service as a published language would describe one.
const SERVICE: Descriptor = Descriptor {
    name: "a-service",
    crate_name: "a_service",
    port: 8002,
    database: "a_db",
    description: "",
    layout: no_queues,
};

#[test]
fn defaults_follow_the_contract() {
    let config = CommonConfig::from_vars(SERVICE, &Vars::from_pairs([])).unwrap();
    assert_eq!(
        config.database_url,
        "postgres://postgres@127.0.0.1:5432/a_db"
    );
    assert_eq!(config.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_eq!(config.amqp_queue_type, QueueType::Classic);
    assert_eq!(config.exchange, "orders");
    assert_eq!(config.http_addr.to_string(), "0.0.0.0:8002");
    assert_eq!(config.log_format, LogFormat::Pretty);
}

#[test]
fn url_passwords_never_reach_an_error_or_debug_output() {
    for (name, value) in [
        ("DATABASE_URL", "postgres://app:Sup3r%2Fsecret@db:5432/"),
        (
            "DATABASE_URL",
            "postgres://app:Sup3r%2Fsecret@db:notaport/x",
        ),
        (
            "AMQP_URL",
            "amqp://app:Sup3r%2Fsecret@mq:5672/%2f?heartbeat=x",
        ),
        ("AMQP_URL", "http://app:Sup3r%2Fsecret@mq"),
    ] {
        let error =
            CommonConfig::from_vars(SERVICE, &Vars::from_pairs([(name, value)])).unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(shown.contains(name), "{shown}");
        assert!(!shown.contains("Sup3r"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }
    let config = CommonConfig::from_vars(
        SERVICE,
        &Vars::from_pairs([
            ("DATABASE_URL", "postgres://app:Sup3rsecret@db:5432/x"),
            ("AMQP_URL", "amqp://app:Sup3rsecret@mq:5672/%2f"),
            ("ADMIN_TOKEN", "admin-token-Sup3rsecret"),
        ]),
    )
    .unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("Sup3rsecret"), "{shown}");
    assert!(shown.contains("app:***@db:5432"), "{shown}");
}

#[test]
fn redaction_keeps_everything_but_the_password() {
    assert_eq!(
        redact_urls("a amqp://u:p@h:1/%2f,amqp://u:p@h2:2/%2f b"),
        "a amqp://u:***@h:1/%2f,amqp://u:***@h2:2/%2f b"
    );
    assert_eq!(
        redact_urls("postgres://postgres@127.0.0.1:5432/x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
}

#[test]
fn a_short_admin_token_is_refused_without_echoing_it() {
    let error = CommonConfig::from_vars(SERVICE, &Vars::from_pairs([("ADMIN_TOKEN", "short-tok")]))
        .unwrap_err();
    assert_eq!(error.name, "ADMIN_TOKEN");
    assert!(!error.to_string().contains("short-tok"), "{error}");
}

#[test]
fn a_bad_value_names_its_variable() {
    for (name, value) in [
        ("HTTP_ADDR", "localhost"),
        ("LOG_FORMAT", "xml"),
        ("AMQP_EXCHANGE", "has space"),
        ("AMQP_URL", "http://nope"),
        ("AMQP_URL", "amqp://a@h1/%2f,,amqp://a@h3/%2f"),
        ("AMQP_QUEUE_TYPE", "mirrored"),
        ("DATABASE_URL", "postgres://127.0.0.1:5432/"),
        ("RUST_LOG", "info,[[["),
        ("RETRY_DELAYS_MS", "100,abc"),
        ("AMQP_PREFETCH", "0"),
    ] {
        let error =
            CommonConfig::from_vars(SERVICE, &Vars::from_pairs([(name, value)])).unwrap_err();
        assert_eq!(error.name, name);
        assert!(error.to_string().contains(name), "{error}");
    }
}

#[test]
fn a_cluster_is_a_list_of_nodes_with_quorum_queues() {
    let list = "amqp://u:p@rabbit-1:5672/%2f,amqp://u:p@rabbit-2:5672/%2f";
    let config = CommonConfig::from_vars(
        SERVICE,
        &Vars::from_pairs([("AMQP_URL", list), ("AMQP_QUEUE_TYPE", "quorum")]),
    )
    .unwrap();
    assert_eq!(config.amqp_url, list);
    assert_eq!(config.amqp_queue_type, QueueType::Quorum);
}
