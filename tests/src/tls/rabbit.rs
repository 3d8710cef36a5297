//! A RabbitMQ node of the test's own with a TLS-only AMQP listener, beside the system's
//! node (which is never touched) and the cluster tests' `saga-1..3`: its own node name,
//! ports and folder, started as `tests/rabbit-cluster.sh` starts its nodes, stopped and
//! removed when dropped.

use super::pki::Pki;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// The broker user the services log in as; its password is one no log may print.
pub const USER: &str = "saga-tls";
pub const PASSWORD: &str = "Tls-Broker-Pa55word-SECRET";

/// One running TLS node.
pub struct TlsRabbit {
    /// `saga-tls-<id>@localhost`, for `rabbitmqctl -n`.
    pub node: String,
    /// The TLS listener on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl TlsRabbit {
    /// Starts a node whose only AMQP listener is TLS with the PKI's server certificate, and
    /// which requires a client certificate signed by the PKI's CA (`fail_if_no_peer_cert`).
    pub fn start(pki: &Pki) -> Self {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let node = format!("saga-tls-{id}@localhost");
        let port = free_port();
        let dist_port = free_port();
        let dir = std::env::temp_dir().join(format!("saga-rabbit-tls-{id}"));
        std::fs::create_dir_all(dir.join("mnesia")).unwrap();
        std::fs::create_dir_all(dir.join("log")).unwrap();
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!(
                "listeners.tcp = none\n\
                 listeners.ssl.default = 127.0.0.1:{port}\n\
                 ssl_options.cacertfile = {ca}\n\
                 ssl_options.certfile = {cert}\n\
                 ssl_options.keyfile = {key}\n\
                 ssl_options.verify = verify_peer\n\
                 ssl_options.fail_if_no_peer_cert = true\n",
                ca = pki.path("ca.pem"),
                cert = pki.path("server.pem"),
                key = pki.path("server.key"),
            ),
        )
        .unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        run("chown", &["-R", "rabbitmq:rabbitmq", dir.to_str().unwrap()]);
        let dir_of = |sub: &str| dir.join(sub).to_str().unwrap().to_owned();
        let args: Vec<String> = vec![
            "-u".into(),
            "rabbitmq".into(),
            "--".into(),
            "env".into(),
            "-i".into(),
            format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
            "HOME=/var/lib/rabbitmq".into(),
            format!("RABBITMQ_NODENAME={node}"),
            format!("RABBITMQ_DIST_PORT={dist_port}"),
            format!("RABBITMQ_CONFIG_FILE={}", dir_of("rabbitmq.conf")),
            format!("RABBITMQ_MNESIA_BASE={}", dir_of("mnesia")),
            format!("RABBITMQ_LOG_BASE={}", dir_of("log")),
            format!("RABBITMQ_PID_FILE={}", dir_of("pid")),
            format!(
                "RABBITMQ_ENABLED_PLUGINS_FILE={}",
                dir_of("enabled_plugins")
            ),
            SERVER.into(),
            "-detached".into(),
        ];
        run(
            "runuser",
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let rabbit = Self { node, port, dir };
        rabbit.await_startup();
        rabbit.ctl(&["add_user", USER, PASSWORD]);
        rabbit.ctl(&["set_permissions", "-p", "/", USER, ".*", ".*", ".*"]);
        rabbit
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
        let mut all = vec!["-q", "-n", self.node.as_str()];
        all.extend_from_slice(args);
        run("rabbitmqctl", &all)
    }

    /// Waits for the VM to register with epmd, then for the app.
    fn await_startup(&self) {
        let started = Instant::now();
        while Command::new("rabbitmq-diagnostics")
            .args(["-q", "-n", &self.node, "ping"])
            .output()
            .map_or(true, |output| !output.status.success())
        {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the TLS node {} did not start; see {}",
                self.node,
                self.dir.join("log").display()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        self.ctl(&["await_startup", "--timeout", "120"]);
    }
}

impl Drop for TlsRabbit {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.node, "shutdown"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Runs a command to its end; panics with its output when it fails.
pub(super) fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{program} cannot run: {error}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{program} {args:?} failed: {text}");
    text
}
