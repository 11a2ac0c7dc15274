//! The journal of a durable run over a [`Store`], and the decoding of a journal for replay.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::Notify;

use super::POLL;

/// Longest pause between two reads of the store by a signal wait.
const MAX_POLL: Duration = Duration::from_secs(10);
use crate::definition::{jitter_fraction, StepIndex};
use crate::journal::{Journal, Replayed};
use crate::run_id::RunId;
use crate::store::{JournalRecord, RecordKind, Store, StoreError};
use crate::workflow::Durable;

/// Journals one run of `W`; records get consecutive sequence numbers.
pub(super) struct StoreJournal<W> {
    store: Arc<dyn Store>,
    run_id: RunId,
    next_seq: u64,
    bell: Arc<Notify>,
    workflow: PhantomData<fn() -> W>,
}

impl<W> StoreJournal<W> {
    pub fn new(store: Arc<dyn Store>, run_id: RunId, next_seq: u64, bell: Arc<Notify>) -> Self {
        StoreJournal {
            store,
            run_id,
            next_seq,
            bell,
            workflow: PhantomData,
        }
    }

    fn next_record(
        &mut self,
        kind: RecordKind,
        step: StepIndex,
        item: Option<u64>,
        payload: Vec<u8>,
    ) -> JournalRecord {
        let record = JournalRecord {
            seq: self.next_seq,
            kind,
            step,
            item,
            payload,
        };
        self.next_seq += 1;
        record
    }
}

impl<W: Durable> Journal<W::__Out> for StoreJournal<W> {
    fn record_output(
        &mut self,
        step: StepIndex,
        item: Option<usize>,
        out: &W::__Out,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        match W::__encode_out(out) {
            Ok(payload) => self.record(RecordKind::Output, step, item.map(|i| i as u64), payload),
            Err(e) => Box::pin(std::future::ready(Err(StoreError::Database(format!(
                "cannot encode an output: {e}"
            ))))),
        }
    }

    fn record(
        &mut self,
        kind: RecordKind,
        step: StepIndex,
        item: Option<u64>,
        payload: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let record = self.next_record(kind, step, item, payload);
        Box::pin(async move { self.store.append(&self.run_id, vec![record]).await })
    }

    fn signal_ready(
        &self,
        name: &'static str,
        deadline: Option<SystemTime>,
    ) -> BoxFuture<'static, Result<bool, StoreError>> {
        let (store, run_id, bell) = (self.store.clone(), self.run_id.clone(), self.bell.clone());
        Box::pin(async move {
            // The deadline is wall-clock (it survives restarts); the wait itself runs on tokio's
            // clock, so paused test time skips it.
            let deadline = deadline.map(|at| {
                let left = at.duration_since(SystemTime::now()).unwrap_or_default();
                tokio::time::Instant::now() + left
            });
            // A signal sent in this process rings the bell at once; the store is also re-read,
            // for signals sent by other processes, at intervals growing up to `MAX_POLL`.
            let mut poll = POLL;
            loop {
                let rung = bell.notified();
                tokio::pin!(rung);
                rung.as_mut().enable();
                if store.has_signal(&run_id, name).await? {
                    return Ok(true);
                }
                let now = tokio::time::Instant::now();
                if deadline.is_some_and(|at| at <= now) {
                    return Ok(false);
                }
                // Jitter spreads the reads of many waits (say, after a recovery) over time.
                let pause = poll.mul_f64(0.5 + 0.5 * jitter_fraction());
                let wake = deadline.map_or(now + pause, |at| at.min(now + pause));
                poll = (poll * 2).min(MAX_POLL);
                tokio::select! {
                    () = &mut rung => {}
                    () = tokio::time::sleep_until(wake) => {}
                }
            }
        })
    }

    fn consume_signal(
        &mut self,
        step: StepIndex,
        name: &'static str,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>> {
        let record = JournalRecord {
            seq: self.next_seq,
            kind: RecordKind::Signal,
            step,
            item: None,
            payload: Vec::new(),
        };
        Box::pin(async move {
            let payload = self
                .store
                .consume_signal(&self.run_id, name, record)
                .await?;
            if payload.is_some() {
                self.next_seq += 1;
            }
            Ok(payload)
        })
    }

    fn decode_signal(
        &self,
        step: StepIndex,
        bytes: &[u8],
    ) -> Result<Box<dyn Any + Send>, StoreError> {
        W::__decode_signal(step, bytes).map_err(|e| StoreError::Corrupt {
            run_id: self.run_id.clone(),
            seq: 0,
            detail: format!("a signal payload does not decode: {e}"),
        })
    }

    fn set_waiting(
        &mut self,
        waiting_for: Option<String>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.store.set_waiting(&self.run_id, waiting_for).await })
    }
}

/// Decodes journal records for replay, checking each against the definition.
pub(super) fn decode_journal<W: Durable>(
    run_id: &RunId,
    records: Vec<JournalRecord>,
) -> Result<Vec<Replayed<W::__Out>>, StoreError> {
    let steps = W::definition().steps.len();
    records
        .into_iter()
        .map(|record| {
            let corrupt = |detail: String| StoreError::Corrupt {
                run_id: run_id.clone(),
                seq: record.seq,
                detail,
            };
            let step = record.step;
            if step as usize >= steps {
                return Err(corrupt(format!(
                    "step index {step} is not in the definition"
                )));
            }
            Ok(match record.kind {
                RecordKind::Output => {
                    let item = record.item.map(|i| i as usize);
                    let out =
                        W::__decode_out(step, item.unwrap_or(0), &record.payload).map_err(|e| {
                            corrupt(format!("the output of step #{step} does not decode: {e}"))
                        })?;
                    Replayed::Output { step, item, out }
                }
                RecordKind::Signal => Replayed::Signal {
                    step,
                    bytes: record.payload,
                },
                RecordKind::WaitStarted => {
                    let millis: [u8; 8] = record
                        .payload
                        .as_slice()
                        .try_into()
                        .map_err(|_| corrupt("bad wait start time".into()))?;
                    let at =
                        SystemTime::UNIX_EPOCH + Duration::from_millis(u64::from_le_bytes(millis));
                    Replayed::WaitStarted { step, at }
                }
                RecordKind::Stopped => Replayed::Stopped {
                    cause: String::from_utf8_lossy(&record.payload).into_owned(),
                },
                RecordKind::Compensated => Replayed::Compensated {
                    step,
                    completion: record.item.unwrap_or(0) as usize,
                },
            })
        })
        .collect()
}
