//! A shared log of what a test's steps did, in order (`log.push("a ran")`), read back with
//! `entries`.

use std::sync::{Arc, Mutex};

/// Shared log of what ran: completions, compensations, drops, in order.
#[derive(Default, Clone)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}
