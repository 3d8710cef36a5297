//! Secrets that are not secret: the placeholder values this project's files and docs have
//! shipped for `ADMIN_TOKEN`, and the shapes such placeholders take. A deployment that
//! forgot to put its own token in must not start with a value anyone can read on GitHub.

/// Values shipped in `deploy/`, `docker-compose.yml` or the docs at some point (see
/// `git log -p -- deploy docker-compose.yml`).
const SHIPPED: [&str; 2] = [
    "replace-me-with-openssl-rand-hex-32",
    "change-me-admin-token",
];

/// How placeholders begin, compared without case and without `-`/`_`:
/// `replace-me…`, `change-me…`/`changeme…`, `your-token…`, `<…`.
const PREFIXES: [&str; 6] = [
    "replaceme",
    "changeme",
    "yourtoken",
    "yoursecret",
    "<",
    "${",
];

/// Whether `token` is a placeholder rather than a secret of the operator's.
pub fn is_placeholder(token: &str) -> bool {
    let token = token.trim();
    if SHIPPED
        .iter()
        .any(|shipped| shipped.eq_ignore_ascii_case(token))
    {
        return true;
    }
    let folded: String = token
        .chars()
        .filter(|c| !matches!(c, '-' | '_'))
        .collect::<String>()
        .to_ascii_lowercase();
    PREFIXES.iter().any(|prefix| folded.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_values_and_their_shapes_are_placeholders() {
        for token in [
            "replace-me-with-openssl-rand-hex-32",
            "change-me-admin-token",
            "REPLACE_ME_please_0123456789",
            "changeme0123456789abcdef",
            "Change-Me-Later-0123456789",
            "your-token-here-0123456789",
            "<openssl rand -hex 32 output>",
            "${ADMIN_TOKEN_FROM_VAULT}",
        ] {
            assert!(is_placeholder(token), "{token}");
        }
    }

    #[test]
    fn real_tokens_are_not() {
        for token in [
            "3f9c1a7be0d24c6f8a5b9e2d7c4f1a0b3f9c1a7be0d24c6f8a5b9e2d7c4f1a0b",
            "test-admin-token-0123456789abcdef",
            "admin-token-Sup3rsecret",
            "exchange-me-not-0123456789",
        ] {
            assert!(!is_placeholder(token), "{token}");
        }
    }
}
