//! A TCP proxy the tests put between a service and PostgreSQL or RabbitMQ, to cut, slow,
//! hold or blackhole that one connection without touching the shared servers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards connections from a local port to `target`; dropped, it stops.
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    /// While set, new connections are refused and no bytes flow.
    down: AtomicBool,
    /// Bumped by each cut; live connections end when it changes.
    cuts: watch::Sender<u64>,
    /// Latency added to every chunk, in milliseconds.
    delay_ms: AtomicU64,
    /// While set, new connections are accepted and then never answered.
    silent: AtomicBool,
    /// Bumped by each blackhole; live connections go silent for good when it changes.
    holes: watch::Sender<u64>,
    /// Bytes the service sent into the blackhole: proof that it had work in flight.
    swallowed: AtomicU64,
    /// While set, what the service sends waits in the proxy (see [`Proxy::hold`]).
    held: watch::Sender<bool>,
    /// Chunks held back by a delay: proof that traffic felt it.
    delayed: AtomicU64,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let addr = listener.local_addr().expect("the bound address");
        let state = Arc::new(State {
            down: AtomicBool::new(false),
            cuts: watch::Sender::new(0),
            delay_ms: AtomicU64::new(0),
            silent: AtomicBool::new(false),
            holes: watch::Sender::new(0),
            swallowed: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            held: watch::Sender::new(false),
        });
        let task = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if state.down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    if state.silent.load(Ordering::SeqCst) {
                        tokio::spawn(swallow(client, state.clone()));
                        continue;
                    }
                    tokio::spawn(forward(client, target, state.clone()));
                }
            }
        });
        Self { addr, state, task }
    }

    /// Drops every live connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.state.down.store(true, Ordering::SeqCst);
        self.state.cuts.send_modify(|n| *n += 1);
    }

    /// A link that dies silently: every live connection stays open on the service's side
    /// but no byte crosses it again, ever — no reset, no close, so the service learns
    /// nothing from the socket. The server's side is closed, as a server does once it
    /// notices a dead peer (so it frees that session's locks or unacked messages). New
    /// connections still work.
    pub fn blackhole(&self) {
        self.state.holes.send_modify(|n| *n += 1);
    }

    /// From now until [`Proxy::restore`], new connections are accepted and never answered.
    pub fn blackhole_new_connections(&self) {
        self.state.silent.store(true, Ordering::SeqCst);
    }

    /// New connections work again (after [`Proxy::cut`],
    /// [`Proxy::blackhole_new_connections`] or [`Proxy::hold`]); the ones a blackhole
    /// swallowed stay silent.
    pub fn restore(&self) {
        self.state.down.store(false, Ordering::SeqCst);
        self.state.silent.store(false, Ordering::SeqCst);
        self.state.held.send_replace(false);
    }

    /// From now until [`Proxy::release`] (or a [`Proxy::cut`], which drops it), what the
    /// service sends waits in the proxy; the server's answers still reach it. Every
    /// connection stops where it is: a PostgreSQL transaction the service has open stays
    /// open, its backend waiting for the next statement — so a test can kill the service
    /// mid-transaction, and a cut afterwards ends the connection without the held bytes
    /// (a `COMMIT` among them never arrives).
    pub fn hold(&self) {
        self.state.held.send_replace(true);
    }

    /// What [`Proxy::hold`] held goes on, in order.
    pub fn release(&self) {
        self.state.held.send_replace(false);
    }

    /// How many bytes the service sent into the blackhole so far.
    pub fn swallowed(&self) -> u64 {
        self.state.swallowed.load(Ordering::SeqCst)
    }

    /// Adds `delay` to every chunk in both directions.
    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// How many chunks a delay held back so far, either way.
    pub fn delayed(&self) -> u64 {
        self.state.delayed.load(Ordering::SeqCst)
    }

    /// The time from sending `hello` through the proxy to the first byte of the server's
    /// answer: what a round trip through this link costs now.
    pub async fn round_trip(&self, hello: &[u8]) -> Duration {
        let mut stream = TcpStream::connect(self.addr)
            .await
            .expect("the proxy accepts");
        stream.set_nodelay(true).expect("no Nagle");
        let started = std::time::Instant::now();
        stream.write_all(hello).await.expect("the hello goes out");
        let mut first = [0u8; 1];
        stream
            .read_exact(&mut first)
            .await
            .expect("the server answers");
        started.elapsed()
    }

    /// The URL `base` (`scheme://user@host:port/rest`) rewritten to go through this proxy.
    pub fn rewrite(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let credentials = authority
            .rsplit_once('@')
            .map(|(c, _)| format!("{c}@"))
            .unwrap_or_default();
        format!("{scheme}://{credentials}{}/{path}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

async fn forward(client: TcpStream, target: SocketAddr, state: Arc<State>) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut cuts = state.cuts.subscribe();
    cuts.borrow_and_update();
    let mut holes = state.holes.subscribe();
    holes.borrow_and_update();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let blackholed = tokio::select! {
        _ = pump(&mut client_read, &mut server_write, &state, Direction::Upstream) => false,
        _ = pump(&mut server_read, &mut client_write, &state, Direction::Downstream) => false,
        _ = cuts.changed() => false,
        _ = holes.changed() => true,
    };
    if blackholed {
        drop((server_read, server_write));
        // The client's socket stays open; what it sends is read and dropped, so its writes
        // succeed as they would into a dead network, and nothing ever comes back.
        tokio::select! {
            _ = drain(&mut client_read, &state) => {}
            _ = cuts.changed() => {}
        }
    }
}

/// A connection accepted during a blackhole: held open, never answered.
async fn swallow(client: TcpStream, state: Arc<State>) {
    let mut cuts = state.cuts.subscribe();
    cuts.borrow_and_update();
    let (mut read, _write) = client.into_split();
    tokio::select! {
        _ = drain(&mut read, &state) => {}
        _ = cuts.changed() => {}
    }
}

/// Reads and discards until the peer closes, counting the bytes.
async fn drain(from: &mut tokio::net::tcp::OwnedReadHalf, state: &State) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                state.swallowed.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
    }
}

/// Which way a pump moves bytes: a hold stops the service's, not the server's.
#[derive(PartialEq)]
enum Direction {
    /// From the service to the server.
    Upstream,
    Downstream,
}

async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    state: &State,
    direction: Direction,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    let mut held = state.held.subscribe();
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if direction == Direction::Upstream && held.wait_for(|held| !*held).await.is_err() {
            return;
        }
        let delay = state.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            state.delayed.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if state.down.load(Ordering::SeqCst) || to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// The address a `scheme://…@host:port/…` URL points at.
pub fn target_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    host_port.parse().expect("tests use numeric host:port URLs")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server; each connection's end is reported on the channel.
    async fn echo_server() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ended, ends) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let ended = ended.clone();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 64];
                    while let Ok(n) = socket.read(&mut buffer).await {
                        if n == 0 || socket.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = ended.send(());
                });
            }
        });
        (addr, ends)
    }

    #[tokio::test]
    async fn a_blackhole_silences_the_client_side_and_closes_the_server_side() {
        let (server, mut ends) = echo_server().await;
        let proxy = Proxy::start(server).await;
        let mut client = TcpStream::connect(proxy.addr).await.unwrap();
        let mut buffer = [0u8; 4];
        client.write_all(b"ping").await.unwrap();
        client.read_exact(&mut buffer).await.unwrap();
        assert_eq!(&buffer, b"ping");

        proxy.blackhole();
        tokio::time::timeout(Duration::from_secs(5), ends.recv())
            .await
            .expect("the server's side is closed");
        client.write_all(b"lost").await.unwrap();
        let answer = tokio::time::timeout(Duration::from_millis(300), client.read(&mut buffer));
        assert!(
            answer.await.is_err(),
            "no answer and no close on the client's side"
        );
        assert_eq!(proxy.swallowed(), 4);

        // New connections still work.
        let mut fresh = TcpStream::connect(proxy.addr).await.unwrap();
        fresh.write_all(b"pong").await.unwrap();
        fresh.read_exact(&mut buffer).await.unwrap();
        assert_eq!(&buffer, b"pong");
    }

    #[tokio::test]
    async fn a_hold_keeps_the_services_bytes_until_released_and_a_cut_drops_them() {
        let (server, mut ends) = echo_server().await;
        let proxy = Proxy::start(server).await;
        let mut client = TcpStream::connect(proxy.addr).await.unwrap();
        let mut buffer = [0u8; 4];
        client.write_all(b"ping").await.unwrap();
        client.read_exact(&mut buffer).await.unwrap();

        proxy.hold();
        client.write_all(b"held").await.unwrap();
        let answer = tokio::time::timeout(Duration::from_millis(300), client.read(&mut buffer));
        assert!(answer.await.is_err(), "held bytes reached the server");
        proxy.release();
        client.read_exact(&mut buffer).await.unwrap();
        assert_eq!(&buffer, b"held");

        proxy.hold();
        client.write_all(b"lost").await.unwrap();
        proxy.cut();
        tokio::time::timeout(Duration::from_secs(5), ends.recv())
            .await
            .expect("the cut closes the server's side");
        let n = client.read(&mut buffer).await.unwrap_or(0);
        assert_eq!(n, 0, "the cut ended the connection, with nothing echoed");
    }

    #[tokio::test]
    async fn a_delay_is_felt_by_a_round_trip_and_counted() {
        let (server, _ends) = echo_server().await;
        let proxy = Proxy::start(server).await;
        proxy.round_trip(b"x").await;
        assert_eq!(proxy.delayed(), 0);
        proxy.set_delay(Duration::from_millis(150));
        assert!(proxy.round_trip(b"x").await >= Duration::from_millis(300));
        assert_eq!(proxy.delayed(), 2, "one chunk each way");
    }

    #[tokio::test]
    async fn rewrites_urls_to_point_at_the_proxy() {
        let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let proxy = Proxy::start(target).await;
        let port = proxy.addr.port();
        assert_eq!(
            proxy.rewrite("amqp://guest:guest@127.0.0.1:5672/%2f"),
            format!("amqp://guest:guest@127.0.0.1:{port}/%2f")
        );
        assert_eq!(
            proxy.rewrite("postgres://postgres@127.0.0.1:5432/t_order"),
            format!("postgres://postgres@127.0.0.1:{port}/t_order")
        );
        assert_eq!(
            target_of("postgres://postgres@127.0.0.1:5432/x"),
            "127.0.0.1:5432".parse().unwrap()
        );
    }
}
