//! Why a RabbitMQ node could not be used ([`OpenError`]), and telling a failure that waiting
//! cannot fix (a TLS setting, a TLS port named by a plaintext URL) from one it can.

use super::nodes::Node;
use lapin::{Connection, ConnectionProperties};
use std::time::Duration;

/// How long connecting to one node and declaring the topology may take before the next
/// node is tried: a node cut off by the network never refuses, it just does not answer.
pub(super) const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long closing a connection may take; a dead one may never answer.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a node could not be used. Names the node by `host:port`, never by its URL.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{node}: {source}")]
    Amqp { node: String, source: lapin::Error },
    #[error("{0}: no answer within {OPEN_TIMEOUT:?}")]
    Timeout(String),
    /// The TLS handshake failed: what it most likely means, then rustls's words.
    #[error("{node}: {meaning}")]
    Tls { node: String, meaning: String },
    /// A plaintext `amqp://` connection to a port that speaks TLS.
    #[error(
        "{node}: the server did not answer in AMQP: this is a TLS port, use amqps:// for it ({source})"
    )]
    NotAmqp { node: String, source: lapin::Error },
}

impl OpenError {
    /// Classifies a failed connection attempt to `node`. A plaintext connection that ended
    /// before AMQP began is asked once more over TLS, to tell a TLS port (answered in TLS)
    /// from a proxy whose server is down (nothing).
    pub(super) async fn connect(node: &Node, source: lapin::Error) -> Self {
        let node_name = node.to_string();
        if let Some(tls) = crate::tls::handshake_failure(&source) {
            return Self::Tls {
                node: node_name,
                meaning: crate::tls::explain(
                    tls,
                    &crate::tls::Params {
                        ca: "cacertfile",
                        client: "certfile/keyfile",
                    },
                ),
            };
        }
        if !node.uses_tls() && ended_before_amqp(&source) && speaks_tls(node).await {
            return Self::NotAmqp {
                node: node_name,
                source,
            };
        }
        Self::Amqp {
            node: node_name,
            source,
        }
    }

    /// A failure that retrying will not fix: the settings or the server's certificate
    /// must change first.
    pub fn is_misconfiguration(&self) -> bool {
        matches!(self, Self::Tls { .. } | Self::NotAmqp { .. })
    }
}

/// The server accepted the connection but did not hold an AMQP conversation: it closed or
/// reset it, or sent what is not AMQP. (Refused or unreachable is not this, nor an AMQP
/// error such as a wrong password.)
fn ended_before_amqp(error: &lapin::Error) -> bool {
    use lapin::ErrorKind;
    use std::io::ErrorKind as Io;
    match error.kind() {
        ErrorKind::ProtocolError(_) | ErrorKind::RuntimeShutdownError(_) => false,
        ErrorKind::IOError(io) => !matches!(
            io.kind(),
            Io::ConnectionRefused
                | Io::HostUnreachable
                | Io::NetworkUnreachable
                | Io::TimedOut
                | Io::NotFound
                | Io::AddrNotAvailable
        ),
        _ => true,
    }
}

/// Whether `node`'s port answers a TLS handshake: a certificate it presents (trusted or
/// not), an alert about ours, or a whole AMQP conversation over TLS.
async fn speaks_tls(node: &Node) -> bool {
    let Ok(runtime) = lapin::runtime::default_runtime() else {
        return false;
    };
    let url = format!("amqps://{}/%2f", node.address());
    let probe = Connection::connect_with_config(
        &url,
        ConnectionProperties::default(),
        Default::default(),
        runtime,
    );
    match tokio::time::timeout(Duration::from_secs(5), probe).await {
        Ok(Ok(connection)) => {
            let _ =
                tokio::time::timeout(CLOSE_TIMEOUT, connection.close(200, "probe".into())).await;
            true
        }
        Ok(Err(error)) => match crate::tls::handshake_failure(&error) {
            Some(tls) => !crate::tls::is_not_tls(tls),
            None => matches!(error.kind(), lapin::ErrorKind::ProtocolError(_)),
        },
        Err(_) => false,
    }
}

/// Every node failed once: the last error, and whether each failure was one that waiting
/// cannot fix.
pub(super) struct Unusable {
    pub(super) last: OpenError,
    pub(super) misconfigured: bool,
}

/// No node could be used as configured, before the service was ever connected.
#[derive(Debug, thiserror::Error)]
#[error("AMQP_URL: cannot use RabbitMQ as configured: {0}")]
pub struct Misconfigured(pub OpenError);
