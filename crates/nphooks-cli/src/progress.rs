//! What the local runner prints as deliveries go, and what each delivery waits for:
//! the integrations it was routed to, and those that have finished.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use nphooks_core::routing::Integration;

/// One line per event, as they happen.
pub(crate) fn line(text: impl AsRef<str>) {
    let now = nphooks_core::rfc3339(SystemTime::now());
    let time = now.get(11..19).unwrap_or_default();
    println!("{time} {}", text.as_ref());
}

/// What each delivery is waiting for and what has finished.
#[derive(Debug, Default)]
pub struct Tracker {
    deliveries: Mutex<BTreeMap<String, Progress>>,
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default, Clone)]
pub struct Progress {
    pub expected: BTreeSet<Integration>,
    /// Integration → (done well, detail).
    pub finished: BTreeMap<Integration, (bool, String)>,
}

impl Progress {
    pub fn complete(&self) -> bool {
        !self.expected.is_empty() && self.expected.iter().all(|i| self.finished.contains_key(i))
    }

    pub fn summary(&self) -> String {
        self.expected
            .iter()
            .map(|i| match self.finished.get(i) {
                Some((true, _)) => format!("{i} ✓"),
                Some((false, _)) => format!("{i} ✗"),
                None => format!("{i} …"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Progress>> {
        self.deliveries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn expect(&self, key: &str, integrations: BTreeSet<Integration>) {
        self.lock()
            .entry(key.to_owned())
            .or_default()
            .expected
            .extend(integrations);
        self.changed.notify_waiters();
    }

    pub(crate) fn finish(&self, key: &str, integration: Integration, ok: bool, detail: String) {
        let progress = {
            let mut deliveries = self.lock();
            let progress = deliveries.entry(key.to_owned()).or_default();
            progress.finished.insert(integration, (ok, detail));
            progress.clone()
        };
        if progress.complete() {
            line(format!("✔ {key}: {}", progress.summary()));
        }
        self.changed.notify_waiters();
    }

    pub fn progress(&self, key: &str) -> Option<Progress> {
        self.lock().get(key).cloned()
    }

    /// Waits until every integration `key` was routed to has finished, or `timeout`.
    pub async fn wait(&self, key: &str, timeout: Duration) -> Option<Progress> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if let Some(progress) = self.progress(key).filter(Progress::complete) {
                return Some(progress);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.progress(key);
            }
        }
    }
}
