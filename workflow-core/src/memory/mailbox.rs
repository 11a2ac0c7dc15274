//! An in-memory run's signals: the [`Mailbox`] its handles (and its parent's, for a child
//! workflow) send to, and the [`MemoryJournal`] through which its scheduler takes them.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::future::BoxFuture;
use tokio::sync::Notify;

use crate::definition::StepIndex;
use crate::journal::{Journal, JournalEvent, SignalPayload};
use crate::store::StoreError;

/// Signals sent to an in-memory run and not consumed yet.
#[derive(Default)]
pub(crate) struct Mailbox {
    queued: Mutex<HashMap<&'static str, VecDeque<SignalPayload>>>,
    /// Woken by every signal.
    bell: Notify,
    /// The run waits for signals (for `status`).
    pub(super) waiting: Mutex<bool>,
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, VecDeque<SignalPayload>>> {
        self.queued.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push(&self, name: &'static str, payload: SignalPayload) {
        self.lock().entry(name).or_default().push_back(payload);
        self.bell.notify_waiters();
    }

    fn has(&self, name: &str) -> bool {
        self.lock().get(name).is_some_and(|q| !q.is_empty())
    }

    pub(super) fn is_waiting(&self) -> bool {
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The scheduler's journal for an in-memory run: records nothing, delivers signals.
pub(crate) struct MemoryJournal {
    pub(crate) mailbox: Arc<Mailbox>,
}

impl<O: Send> Journal<O> for MemoryJournal {
    fn record_output(
        &mut self,
        _: StepIndex,
        _: Option<usize>,
        _: &O,
    ) -> Result<Option<crate::journal::Commit>, StoreError> {
        Ok(None)
    }

    fn record(&mut self, _: JournalEvent) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    fn has_signal(&self, name: &'static str) -> BoxFuture<'static, Result<bool, StoreError>> {
        let has = self.mailbox.has(name);
        Box::pin(async move { Ok(has) })
    }

    fn signal_ready(
        &self,
        name: &'static str,
        deadline: Option<SystemTime>,
    ) -> BoxFuture<'static, Result<bool, StoreError>> {
        let mailbox = self.mailbox.clone();
        Box::pin(async move {
            loop {
                let rung = mailbox.bell.notified();
                tokio::pin!(rung);
                rung.as_mut().enable();
                if mailbox.has(name) {
                    return Ok(true);
                }
                let left =
                    deadline.map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
                match left {
                    Some(left) if left.is_zero() => return Ok(false),
                    Some(left) => {
                        if tokio::time::timeout(left, rung).await.is_err() {
                            return Ok(mailbox.has(name));
                        }
                    }
                    None => rung.await,
                }
            }
        })
    }

    fn consume_signal(
        &mut self,
        _: StepIndex,
        name: &'static str,
    ) -> BoxFuture<'_, Result<Option<SignalPayload>, StoreError>> {
        let payload = self
            .mailbox
            .lock()
            .get_mut(name)
            .and_then(VecDeque::pop_front);
        Box::pin(async move { Ok(payload) })
    }

    fn decode_signal(&self, _: StepIndex, _: &[u8]) -> Result<Box<dyn Any + Send>, StoreError> {
        Err(StoreError::Database(
            "an in-memory run holds no encoded signals".into(),
        ))
    }

    fn set_waiting(
        &mut self,
        waiting_for: Option<String>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        *self
            .mailbox
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = waiting_for.is_some();
        Box::pin(async { Ok(()) })
    }

    fn parks_waits(&self) -> bool {
        false
    }
}
