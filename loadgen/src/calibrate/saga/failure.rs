//! The first thing that went wrong in a background task (a hop, a publisher, the intake),
//! kept so that the sagas waiting on it end with that reason instead of a timeout.

use std::sync::Arc;
use tokio::sync::watch;

#[derive(Clone)]
pub struct Failure(Arc<watch::Sender<Option<String>>>);

impl Failure {
    pub fn new() -> Self {
        Self(Arc::new(watch::Sender::new(None)))
    }

    /// Records `reason` unless something failed before.
    pub fn fail(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.0.send_if_modified(|first| {
            let unset = first.is_none();
            if unset {
                *first = Some(reason);
            }
            unset
        });
    }

    /// Resolves with the first failure, once there is one.
    pub async fn failed(&self) -> String {
        let mut seen = self.0.subscribe();
        let first = seen
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone());
        match first {
            Ok(reason) => reason.unwrap_or_default(),
            // The sender lives in `self`, so it is never dropped while this waits.
            Err(_) => std::future::pending().await,
        }
    }
}
