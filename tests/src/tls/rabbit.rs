//! A RabbitMQ node of the test's own ([`PrivateRabbit`]) whose only AMQP listener is TLS.

use super::pki::Pki;
use crate::private_rabbit::PrivateRabbit;
pub use crate::private_rabbit::free_port;
pub(super) use crate::private_rabbit::run;

/// The broker user the services log in as; its password is one no log may print.
pub const USER: &str = "saga-tls";
pub const PASSWORD: &str = "Tls-Broker-Pa55word-SECRET";

/// One running TLS node.
pub struct TlsRabbit {
    /// `saga-tls-<id>@localhost`, for `rabbitmqctl -n`.
    pub node: String,
    /// The TLS listener on 127.0.0.1.
    pub port: u16,
    rabbit: PrivateRabbit,
}

impl TlsRabbit {
    /// Starts a node whose only AMQP listener is TLS with the PKI's server certificate, and
    /// which requires a client certificate signed by the PKI's CA (`fail_if_no_peer_cert`).
    pub fn start(pki: &Pki) -> Self {
        Self::serving(pki, "server.pem")
    }

    /// [`Self::start`], presenting the PKI's certificate `certfile` (for its `server.key`)
    /// instead of `server.pem`.
    pub fn serving(pki: &Pki, certfile: &str) -> Self {
        let rabbit = PrivateRabbit::start("tls", |port| {
            format!(
                "listeners.tcp = none\n\
                 listeners.ssl.default = 127.0.0.1:{port}\n\
                 ssl_options.cacertfile = {ca}\n\
                 ssl_options.certfile = {cert}\n\
                 ssl_options.keyfile = {key}\n\
                 ssl_options.verify = verify_peer\n\
                 ssl_options.fail_if_no_peer_cert = true\n",
                ca = pki.path("ca.pem"),
                cert = pki.path(certfile),
                key = pki.path("server.key"),
            )
        });
        rabbit.ctl(&["add_user", USER, PASSWORD]);
        rabbit.ctl(&["set_permissions", "-p", "/", USER, ".*", ".*", ".*"]);
        Self {
            node: rabbit.node.clone(),
            port: rabbit.port,
            rabbit,
        }
    }

    /// An `amqps://` URL of this node for [`USER`], with these query parameters.
    pub fn url(&self, params: &str) -> String {
        format!(
            "amqps://{USER}:{PASSWORD}@127.0.0.1:{}/%2f?{params}",
            self.port
        )
    }

    /// `rabbitmqctl -n <node> …`; panics with its output when it fails.
    pub fn ctl(&self, args: &[&str]) -> String {
        self.rabbit.ctl(args)
    }

    /// Everything the node has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_dir(self.rabbit.log_dir())
            .map(|entries| {
                entries
                    .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}
