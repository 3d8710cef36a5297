//! The RabbitMQ nodes `AMQP_URL` names: one URL, or several nodes of one cluster separated
//! by commas (CONTRACT §11). A service connects to the first that answers and, when its
//! node goes away, to the next one round the list. Each URL may be `amqps://` with its own
//! TLS parameters ([`super::tls`]).

use lapin::tcp::OwnedTLSConfig;
use lapin::uri::AMQPUri;
use std::fmt;
use std::str::FromStr;

/// One node: its URL (with credentials, never logged), its `host:port` (safe to show) and,
/// for `amqps://`, the TLS settings its query parameters name (files read at start-up).
#[derive(Clone)]
pub struct Node {
    url: String,
    address: String,
    tls: Option<OwnedTLSConfig>,
}

/// Two nodes are the same when their URLs are: the TLS settings derive from it.
impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

impl Eq for Node {}

impl Node {
    /// The URL to connect with; it may hold a password, so never log it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `host:port`, for logs and `/ready`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The TLS settings to connect with (the defaults for a plain `amqp://` URL, which
    /// ignores them).
    pub fn tls(&self) -> OwnedTLSConfig {
        self.tls.clone().unwrap_or_default()
    }

    /// Whether the URL is `amqps://`.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// Shows the address only, so a node in a log or a panic never prints a password.
impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Node({})", self.address)
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

/// The nodes of one cluster, in the order `AMQP_URL` lists them; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nodes(Vec<Node>);

impl Nodes {
    /// Splits a list without checking it: a part that is not an AMQP URL stays a node whose
    /// connections fail (and say why). [`FromStr`] is the strict parse the configuration uses.
    pub fn lenient(list: &str) -> Self {
        let nodes: Vec<Node> = parts(list)
            .map(|(_, url)| Node {
                address: address(url).unwrap_or_else(|_| "<not an AMQP URL>".to_owned()),
                url: url.to_owned(),
                tls: super::tls::settings(url).ok().flatten(),
            })
            .collect();
        if nodes.is_empty() {
            return Self(vec![Node {
                url: list.to_owned(),
                address: "<no AMQP URL>".to_owned(),
                tls: None,
            }]);
        }
        Self(nodes)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a list has at least one node.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The node at `index` round the list (so any index is valid).
    pub fn get(&self, index: usize) -> &Node {
        &self.0[index % self.0.len()]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        self.0.iter()
    }
}

impl FromStr for Nodes {
    type Err = String;

    /// Every part must be an `amqp://` or `amqps://` URL whose TLS files can be read; the
    /// error names the part by its position and never repeats the text, which may hold a
    /// password.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut nodes = Vec::new();
        for (position, url) in parts(list) {
            if url.is_empty() {
                return Err(format!("node {position} of the list is empty"));
            }
            let address = address(url).map_err(|reason| format!("node {position}: {reason}"))?;
            let tls =
                super::tls::settings(url).map_err(|reason| format!("node {position}: {reason}"))?;
            nodes.push(Node {
                url: url.to_owned(),
                address,
                tls,
            });
        }
        Ok(Self(nodes))
    }
}

/// The comma-separated parts, trimmed, numbered from 1.
fn parts(list: &str) -> impl Iterator<Item = (usize, &str)> {
    list.split(',')
        .map(str::trim)
        .enumerate()
        .map(|(i, part)| (i + 1, part))
}

/// `host:port` of an AMQP URL.
fn address(url: &str) -> Result<String, String> {
    if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
        return Err("not an amqp:// or amqps:// URL".to_owned());
    }
    // lapin's own message may quote the URL; say what is wrong without it.
    let uri = AMQPUri::from_str(url).map_err(|_| "not a valid AMQP URL".to_owned())?;
    Ok(format!("{}:{}", uri.authority.host, uri.authority.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_one_node() {
        let nodes: Nodes = "amqp://guest:guest@127.0.0.1:5672/%2f".parse().unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes.get(0).address(), "127.0.0.1:5672");
        assert_eq!(nodes.get(0).url(), "amqp://guest:guest@127.0.0.1:5672/%2f");
    }

    #[test]
    fn a_list_keeps_its_order_and_goes_round() {
        let nodes: Nodes = "amqp://u:secret@rabbit-1:5672/%2f, amqp://u:secret@rabbit-2/%2f,amqps://u:secret@rabbit-3/%2f"
            .parse()
            .unwrap();
        let addresses: Vec<_> = nodes.iter().map(Node::address).collect();
        assert_eq!(
            addresses,
            ["rabbit-1:5672", "rabbit-2:5672", "rabbit-3:5671"]
        );
        assert_eq!(nodes.get(3).address(), "rabbit-1:5672");
    }

    #[test]
    fn a_bad_part_is_named_by_position_without_its_text() {
        for (list, expected) in [
            (
                "amqp://a:pw@h1/%2f,,amqp://a:pw@h3/%2f",
                "node 2 of the list is empty",
            ),
            ("amqp://a:pw@h1/%2f,http://a:pw@h2/", "node 2: not an amqp"),
            ("amqp://a:pw@h1:99999/%2f", "node 1: not a valid AMQP URL"),
        ] {
            let error = list.parse::<Nodes>().unwrap_err();
            assert!(error.contains(expected), "{list}: {error}");
            assert!(!error.contains("pw"), "{error}");
        }
    }

    #[test]
    fn debug_shows_no_password() {
        let nodes: Nodes = "amqp://u:secret@h:1/%2f".parse().unwrap();
        assert!(!format!("{nodes:?}").contains("secret"));
    }
}
