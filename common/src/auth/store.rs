//! The key set in force, and keeping it fresh: a PEM key is fixed; a JWKS document (at
//! `AUTH_JWKS_URL`, or where the issuer's discovery document points) is fetched at start (until that works, [`KeyStore::is_loaded`] is false and `/ready` says
//! 503), again every `refresh`, and when a token names a key id the set lacks — at most
//! once per `min_interval`, however many such tokens arrive. A failed fetch keeps the
//! cached keys. Verifying a token never waits on the network except for that one
//! rate-limited fetch.

use super::config::JwksLocation;
use super::discovery;
use super::keys::KeySet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The first retry of a failed first fetch; it doubles up to `min_interval`.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The keys, shared by every request of the process.
#[derive(Clone)]
pub struct KeyStore {
    inner: Arc<Inner>,
}

struct Inner {
    current: RwLock<Arc<KeySet>>,
    /// Bumped by every successful fetch, so a request that waited for someone else's
    /// fetch knows it need not fetch again.
    generation: AtomicU64,
    loaded: AtomicBool,
    jwks: Option<Fetcher>,
}

struct Fetcher {
    location: JwksLocation,
    /// `AUTH_ISSUER`, which a discovery document must name as its own.
    issuer: String,
    http: reqwest::Client,
    refresh: Duration,
    min_interval: Duration,
    /// When the last fetch started, successful or not.
    last_attempt: Mutex<Option<Instant>>,
    /// One fetch at a time; requests that asked meanwhile share its result.
    single_flight: tokio::sync::Mutex<()>,
    /// Why the last fetch failed, for `/ready` while no set was ever loaded.
    last_error: Mutex<Option<String>>,
}

impl KeyStore {
    /// A set that never changes (`AUTH_PUBLIC_KEY`).
    pub fn fixed(set: KeySet) -> Self {
        Self::new(set, true, None)
    }

    /// A JWKS document at `location` for tokens of `issuer`, not loaded until
    /// [`KeyStore::run`] fetched it.
    pub fn jwks(
        location: JwksLocation,
        issuer: &str,
        refresh: Duration,
        min_interval: Duration,
    ) -> Self {
        let fetcher = Fetcher {
            location,
            issuer: issuer.to_owned(),
            http: discovery::client(FETCH_TIMEOUT),
            refresh,
            min_interval,
            last_attempt: Mutex::new(None),
            single_flight: tokio::sync::Mutex::new(()),
            last_error: Mutex::new(None),
        };
        Self::new(KeySet::default(), false, Some(fetcher))
    }

    fn new(set: KeySet, loaded: bool, jwks: Option<Fetcher>) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: RwLock::new(Arc::new(set)),
                generation: AtomicU64::new(0),
                loaded: AtomicBool::new(loaded),
                jwks,
            }),
        }
    }

    /// The keys in force now.
    pub fn current(&self) -> Arc<KeySet> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Changes with every successful fetch.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Whether a first set of keys is there.
    pub fn is_loaded(&self) -> bool {
        self.inner.loaded.load(Ordering::Acquire)
    }

    /// Why no set is loaded yet, for `/ready`.
    pub fn not_loaded_reason(&self) -> Option<String> {
        if self.is_loaded() {
            return None;
        }
        let fetcher = self.inner.jwks.as_ref()?;
        let error = lock(&fetcher.last_error).clone();
        let from = &fetcher.location;
        Some(match error {
            Some(error) => format!("signing keys: not loaded from {from} yet ({error})"),
            None => format!("signing keys: not loaded from {from} yet"),
        })
    }

    /// A token named a key id that the set of generation `seen` lacks: fetch the set again
    /// unless one was fetched meanwhile or the last fetch was under `min_interval` ago.
    /// True when the set has changed since `seen` (look again).
    pub async fn refresh_for_unknown_kid(&self, seen: u64) -> bool {
        let Some(fetcher) = &self.inner.jwks else {
            return false;
        };
        let _turn = fetcher.single_flight.lock().await;
        if self.generation() != seen {
            return true;
        }
        let recently =
            lock(&fetcher.last_attempt).is_some_and(|at| at.elapsed() < fetcher.min_interval);
        if recently {
            return false;
        }
        tracing::info!(source = %fetcher.location, "a token names an unknown key id; fetching the JWKS again");
        self.fetch(fetcher).await.is_ok() && self.generation() != seen
    }

    /// Keeps a JWKS set fresh until `stop`: fetches at once (retrying, from 1 s, until a
    /// first set is loaded), then every `refresh`; a failed refresh is tried again after
    /// `min_interval`, with the cached keys still in force. A fixed set returns at once.
    pub async fn run(self, stop: CancellationToken) {
        let Some(fetcher) = &self.inner.jwks else {
            return;
        };
        let mut retry = FIRST_RETRY;
        loop {
            let result = {
                let _turn = fetcher.single_flight.lock().await;
                self.fetch(fetcher).await
            };
            let wait = match result {
                Ok(()) => {
                    retry = FIRST_RETRY;
                    fetcher.refresh
                }
                Err(()) if !self.is_loaded() => {
                    let wait = retry;
                    retry = (retry * 2).min(fetcher.min_interval);
                    wait
                }
                Err(()) => fetcher.min_interval.min(fetcher.refresh),
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One fetch; on success the new set replaces the old one. The caller holds the
    /// single-flight lock.
    async fn fetch(&self, fetcher: &Fetcher) -> Result<(), ()> {
        *lock(&fetcher.last_attempt) = Some(Instant::now());
        match download(fetcher)
            .await
            .and_then(|body| KeySet::from_jwks(&body))
        {
            Ok((set, skipped)) => {
                if !skipped.is_empty() {
                    tracing::debug!(?skipped, "JWKS keys left out");
                }
                let kids = set.kids();
                let changed = self.current().kids() != kids;
                *self
                    .inner
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(set);
                self.inner.generation.fetch_add(1, Ordering::AcqRel);
                let first = !self.inner.loaded.swap(true, Ordering::AcqRel);
                *lock(&fetcher.last_error) = None;
                if first {
                    tracing::info!(source = %fetcher.location, ?kids, "signing keys loaded");
                } else if changed {
                    tracing::info!(source = %fetcher.location, ?kids, "signing keys changed");
                }
                Ok(())
            }
            Err(error) => {
                if self.is_loaded() {
                    tracing::warn!(source = %fetcher.location, %error, "cannot refresh the signing keys; the cached ones stay in force");
                } else {
                    tracing::warn!(source = %fetcher.location, %error, "cannot load the signing keys yet");
                }
                *lock(&fetcher.last_error) = Some(error);
                Err(())
            }
        }
    }
}

/// The JWKS document: at its URL, or first the discovery document for where it is.
async fn download(fetcher: &Fetcher) -> Result<Vec<u8>, String> {
    let url = match &fetcher.location {
        JwksLocation::Url(url) => url.clone(),
        JwksLocation::Discovery(document) => {
            discovery::jwks_uri(&fetcher.http, document, &fetcher.issuer).await?
        }
    };
    discovery::get(
        &fetcher.http,
        &url,
        "application/jwk-set+json, application/json",
    )
    .await
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
