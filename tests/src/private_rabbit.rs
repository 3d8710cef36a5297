//! A RabbitMQ node of the test's own, beside the system's node (which is never touched, since
//! other tests use it) and the cluster tests' `saga-1..3`: its own node name, ports and
//! folder, started as `tests/rabbit-cluster.sh` starts its nodes (Debian's wrapper drops
//! `RABBITMQ_*` variables, so the real script runs under `runuser`), stopped and removed
//! when dropped. A test that changes a node's global state (its memory or disk alarm, its
//! TLS listener) does it here.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// One running node.
pub struct PrivateRabbit {
    /// `saga-<kind>-<id>@localhost`, for `rabbitmqctl -n`.
    pub node: String,
    /// Its AMQP listener on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl PrivateRabbit {
    /// A node with one plaintext AMQP listener on 127.0.0.1, where `guest` may log in.
    pub fn plain(kind: &str) -> Self {
        Self::start(kind, |port| {
            format!("listeners.tcp.local = 127.0.0.1:{port}\n")
        })
    }

    /// Starts a node named after `kind` whose `rabbitmq.conf` is `config` of its AMQP port,
    /// and waits until it runs.
    pub fn start(kind: &str, config: impl FnOnce(u16) -> String) -> Self {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let node = format!("saga-{kind}-{id}@localhost");
        let port = free_port();
        let dist_port = free_port();
        let dir = std::env::temp_dir().join(format!("saga-rabbit-{kind}-{id}"));
        std::fs::create_dir_all(dir.join("mnesia")).unwrap();
        std::fs::create_dir_all(dir.join("log")).unwrap();
        std::fs::write(dir.join("rabbitmq.conf"), config(port)).unwrap();
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
        rabbit
    }

    /// An `amqp://` URL of this node for `guest`.
    pub fn guest_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `rabbitmqctl -n <node> …`; panics with its output when it fails. Blocks the thread:
    /// for set-up, not while a test's tasks run (see [`Self::ctl_async`]).
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut all = vec!["-q", "-n", self.node.as_str()];
        all.extend_from_slice(args);
        run("rabbitmqctl", &all)
    }

    /// [`Self::ctl`] without blocking the runtime's thread.
    pub async fn ctl_async(&self, args: &[&str]) -> String {
        let output = tokio::process::Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.node])
            .args(args)
            .output()
            .await
            .expect("rabbitmqctl runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "rabbitmqctl -n {} {args:?} failed: {text}",
            self.node
        );
        text
    }

    /// Where the node writes its logs.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
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
                "the node {} did not start; see {}",
                self.node,
                self.log_dir().display()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        self.ctl(&["await_startup", "--timeout", "120"]);
    }
}

impl Drop for PrivateRabbit {
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
pub(crate) fn run(program: &str, args: &[&str]) -> String {
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
