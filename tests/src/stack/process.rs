//! The service processes of a [`TestStack`]: start, wait for `ready`, signal, kill, restart.

use super::{Dependency, START_TIMEOUT, TEST_ADMIN_TOKEN, TEST_RETRY_DELAYS_MS, TestStack};
use ::contract::Service;
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One service process.
pub struct Instance {
    pub service: Service,
    pub addr: SocketAddr,
    pub log: PathBuf,
    pub(super) child: Child,
}

/// A process that has been started but has not said `ready` yet.
pub struct Starting {
    service: Service,
    log: PathBuf,
    child: Child,
}

impl Starting {
    /// Waits for the `ready` line and reads the HTTP address from it.
    pub async fn await_ready(mut self) -> Instance {
        let started = Instant::now();
        loop {
            if let Some(addr) = ready_address(&self.log) {
                return Instance {
                    service: self.service,
                    addr,
                    log: self.log,
                    child: self.child,
                };
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.service.name(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = self.child.kill();
                panic!(
                    "{} was not ready within {START_TIMEOUT:?}; log: {}",
                    self.service.name(),
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The `http_addr` of the `ready` line in a JSON log, once it is there.
fn ready_address(log: &Path) -> Option<SocketAddr> {
    let file = File::open(log).ok()?;
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let entry: Value = serde_json::from_str(&line).ok()?;
            (entry["message"] == "ready").then(|| entry["http_addr"].as_str()?.parse().ok())?
        })
}

impl Instance {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, name: &str) {
        devstack::signal(self.pid(), name).expect("the process can be signalled");
    }

    /// Waits for the process to exit, for at most `timeout`.
    async fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl TestStack {
    /// The environment a service of this stack runs with, plus `extra`.
    fn command(&self, service: Service, extra: &[(&str, &str)]) -> Command {
        let mut command = Command::new(devstack::binary(service.name()).expect("binary path"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.url_for(service, Dependency::Database))
            .env("AMQP_URL", self.url_for(service, Dependency::Broker))
            .env("AMQP_EXCHANGE", &self.name)
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env(
                "RETRY_DELAYS_MS",
                TEST_RETRY_DELAYS_MS.map(|ms| ms.to_string()).join(","),
            )
            .env("PAYMENT_RETRY_BASE_MS", "20")
            .env("ADMIN_TOKEN", TEST_ADMIN_TOKEN);
        for (name, value) in self
            .env
            .iter()
            .chain(self.service_env.get(&service).into_iter().flatten())
        {
            command.env(name, value);
        }
        command.envs(extra.iter().copied());
        command
    }

    /// Starts one more process of `service`; await [`Starting::await_ready`] on the result.
    pub fn spawn(&mut self, service: Service) -> Starting {
        self.spawn_with_env(service, &[])
    }

    /// Starts one more process of `service` with these variables besides the stack's.
    pub fn spawn_with_env(&mut self, service: Service, extra: &[(&str, &str)]) -> Starting {
        self.started += 1;
        let log = self
            .log_dir
            .join(format!("{}-{}.log", service.short_name(), self.started));
        let file = File::create(&log).expect("the log file can be created");
        let child = self
            .command(service, extra)
            .stdout(file.try_clone().expect("the log file can be shared"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("the service binary starts");
        Starting {
            service,
            log,
            child,
        }
    }

    /// Starts one more replica of `service` and waits until it is ready.
    pub async fn add_replica(&mut self, service: Service) {
        self.add_replica_with_env(service, &[]).await;
    }

    /// Starts one more replica of `service` with these variables besides the stack's (one
    /// replica configured unlike the others), and waits until it is ready.
    pub async fn add_replica_with_env(&mut self, service: Service, extra: &[(&str, &str)]) {
        let instance = self.spawn_with_env(service, extra).await_ready().await;
        self.instances.entry(service).or_default().push(instance);
    }

    pub fn instances(&self, service: Service) -> &[Instance] {
        self.instances
            .get(&service)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The base URL of the first running instance of `service`.
    pub fn url(&self, service: Service, path: &str) -> String {
        let instance = self
            .instances(service)
            .first()
            .unwrap_or_else(|| panic!("{} is not running", service.name()));
        format!("http://{}{}", instance.addr, path)
    }

    /// SIGKILL the `index`-th running instance of `service` only.
    pub async fn kill_one(&mut self, service: Service, index: usize) {
        let mut instance = self
            .instances
            .get_mut(&service)
            .filter(|instances| index < instances.len())
            .unwrap_or_else(|| panic!("{} has no instance {index}", service.name()))
            .remove(index);
        instance.signal("KILL");
        instance.wait(Duration::from_secs(10)).await;
    }

    /// SIGKILL every instance of `service`: no chance to finish anything.
    pub async fn kill(&mut self, service: Service) {
        for mut instance in self.instances.remove(&service).unwrap_or_default() {
            instance.signal("KILL");
            instance.wait(Duration::from_secs(10)).await;
        }
    }

    /// SIGTERM every instance of `service` and returns their exit statuses, `None` for one
    /// that did not exit within `timeout`.
    pub async fn terminate(
        &mut self,
        service: Service,
        timeout: Duration,
    ) -> Vec<Option<ExitStatus>> {
        let mut statuses = Vec::new();
        for mut instance in self.instances.remove(&service).unwrap_or_default() {
            instance.signal("TERM");
            let status = instance.wait(timeout).await;
            if status.is_none() {
                instance.signal("KILL");
            }
            statuses.push(status);
        }
        statuses
    }

    /// Sends a signal (`TERM`, `KILL`, …) to every instance of `service`; a paused one
    /// receives it when resumed.
    pub fn signal(&self, service: Service, name: &str) {
        self.instances(service).iter().for_each(|i| i.signal(name));
    }

    /// SIGSTOP: the processes freeze, holding their connections and unacked messages.
    pub fn pause(&self, service: Service) {
        self.instances(service)
            .iter()
            .for_each(|i| i.signal("STOP"));
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&self, service: Service) {
        self.instances(service)
            .iter()
            .for_each(|i| i.signal("CONT"));
    }

    /// SIGSTOP the `index`-th running instance of `service` only.
    pub fn pause_one(&self, service: Service, index: usize) {
        self.instances(service)[index].signal("STOP");
    }

    /// SIGCONT the `index`-th running instance of `service` after [`Self::pause_one`].
    pub fn resume_one(&self, service: Service, index: usize) {
        self.instances(service)[index].signal("CONT");
    }

    /// Starts `count` fresh instances of `service` (after a kill or terminate).
    pub async fn restart(&mut self, service: Service, count: usize) {
        for _ in 0..count {
            self.add_replica(service).await;
        }
    }
}
