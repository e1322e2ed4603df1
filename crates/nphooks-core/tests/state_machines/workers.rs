//! What each worker believes it holds, shared by both models.
//!
//! A worker (a receiver request or a processor run) holds a key from the answer that
//! gave it the key until it settles it; it acts only while its lease lasts (its Lambda is
//! dead after). An override — an operator's `forget`, a stray `abandon`, or a worker
//! settling a record someone else has since taken — starts a new `epoch` of the key:
//! holders from earlier epochs no longer count.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy)]
pub struct Hold {
    pub key: usize,
    /// The body it began with (the ledger's payload hash).
    pub body: usize,
    pub lease_until: u64,
    pub epoch: u32,
}

#[derive(Debug, Default)]
pub struct Workers {
    epochs: HashMap<usize, u32>,
    holds: HashMap<usize, Hold>,
}

impl Workers {
    pub fn epoch(&self, key: usize) -> u32 {
        self.epochs.get(&key).copied().unwrap_or(0)
    }

    pub fn new_epoch(&mut self, key: usize) {
        *self.epochs.entry(key).or_default() += 1;
    }

    /// The worker now holds `key` (any earlier hold of it was dropped: its Lambda died).
    pub fn hold(&mut self, worker: usize, key: usize, body: usize, lease_until: u64) {
        let epoch = self.epoch(key);
        let hold = Hold {
            key,
            body,
            lease_until,
            epoch,
        };
        self.holds.insert(worker, hold);
    }

    /// The worker's hold, if its lease lasts at `now`.
    pub fn live(&self, worker: usize, now: u64) -> Option<Hold> {
        self.holds
            .get(&worker)
            .filter(|h| now < h.lease_until)
            .copied()
    }

    /// Ends the worker's live hold, returning it; one from an earlier epoch settles
    /// someone else's record, which is an override.
    pub fn settle(&mut self, worker: usize, now: u64) -> Option<Hold> {
        let hold = self.live(worker, now)?;
        self.holds.remove(&worker);
        if hold.epoch != self.epoch(hold.key) {
            self.new_epoch(hold.key);
        }
        Some(hold)
    }

    /// Drops the worker's hold of `key`, if it has one.
    pub fn drop_hold(&mut self, worker: usize, key: usize) {
        if self.holds.get(&worker).is_some_and(|h| h.key == key) {
            self.holds.remove(&worker);
        }
    }

    /// How many workers hold `key` with a live lease in its current epoch.
    pub fn owners(&self, key: usize, now: u64) -> usize {
        (0..super::WORKERS)
            .filter_map(|w| self.live(w, now))
            .filter(|h| h.key == key && h.epoch == self.epoch(key))
            .count()
    }
}
