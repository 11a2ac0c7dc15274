//! The journal of a claimed durable run over a [`Store`], and the decoding of a journal for
//! replay. Every write carries the run's [`Claim`], so a worker that lost the run's lease
//! writes nothing more.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::Notify;

use super::POLL;
use crate::definition::{jitter_fraction, Definition, StepIndex};
use crate::journal::{
    Commit, Journal, JournalEvent, Replay, Replayed, SignalOutcome, SignalPayload,
};
use crate::run_id::RunId;
use crate::store::{Claim, JournalRecord, Store, StoreError};
use crate::workflow::Durable;

/// Longest pause between two reads of the store by a signal wait that is not parked.
const MAX_POLL: Duration = Duration::from_secs(10);

/// Journals one claimed run of `W`; records get consecutive sequence numbers.
pub(super) struct StoreJournal<W> {
    store: Arc<dyn Store>,
    claim: Claim,
    next_seq: u64,
    bell: Arc<Notify>,
    parks_waits: bool,
    workflow: PhantomData<fn() -> W>,
}

impl<W> StoreJournal<W> {
    pub fn new(
        store: Arc<dyn Store>,
        claim: Claim,
        next_seq: u64,
        bell: Arc<Notify>,
        parks_waits: bool,
    ) -> Self {
        StoreJournal {
            store,
            claim,
            next_seq,
            bell,
            parks_waits,
            workflow: PhantomData,
        }
    }

    fn run_id(&self) -> &RunId {
        &self.claim.run_id
    }

    /// Queues `event` as the next record (its position taken now, so queued records keep
    /// their order); returns its commit.
    fn queue(&mut self, event: JournalEvent) -> Commit {
        let record = JournalRecord {
            seq: self.next_seq,
            event,
        };
        self.next_seq += 1;
        self.store.append(&self.claim, vec![record])
    }
}

fn step_name<W: Durable>(step: StepIndex) -> String {
    W::definition().steps[step as usize].name.to_owned()
}

impl<W: Durable> Journal<W::__Out> for StoreJournal<W> {
    fn record_output(
        &mut self,
        step: StepIndex,
        item: Option<usize>,
        out: &W::__Out,
    ) -> Result<Option<Commit>, StoreError> {
        let output = W::__encode_out(out).map_err(|e| {
            StoreError::Unstorable(format!(
                "the output of step `{}` cannot be journaled: {e}",
                step_name::<W>(step)
            ))
        })?;
        let step = step_name::<W>(step);
        let event = match item {
            Some(item) => JournalEvent::ItemCompleted {
                step,
                item: item as u64,
                output,
            },
            None => JournalEvent::StepCompleted { step, output },
        };
        Ok(Some(self.queue(event)))
    }

    fn record(&mut self, event: JournalEvent) -> BoxFuture<'_, Result<(), StoreError>> {
        self.queue(event)
    }

    fn has_signal(&self, name: &'static str) -> BoxFuture<'static, Result<bool, StoreError>> {
        let (store, run_id) = (self.store.clone(), self.run_id().clone());
        Box::pin(async move { store.has_signal(&run_id, name).await })
    }

    fn signal_ready(
        &self,
        name: &'static str,
        deadline: Option<SystemTime>,
    ) -> BoxFuture<'static, Result<bool, StoreError>> {
        let (store, run_id, bell) = (self.store.clone(), self.run_id().clone(), self.bell.clone());
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
                // Jitter spreads the reads of many waits over time.
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
    ) -> BoxFuture<'_, Result<Option<SignalPayload>, StoreError>> {
        Box::pin(async move {
            let step = step_name::<W>(step);
            let payload = self
                .store
                .consume_signal(&self.claim, self.next_seq, &step, name)
                .await?;
            if payload.is_some() {
                self.next_seq += 1;
            }
            Ok(payload.map(SignalPayload::Encoded))
        })
    }

    fn decode_signal(
        &self,
        step: StepIndex,
        bytes: &[u8],
    ) -> Result<Box<dyn Any + Send>, StoreError> {
        W::__decode_signal(step, bytes).map_err(|e| StoreError::Corrupt {
            run_id: self.run_id().clone(),
            seq: None,
            detail: format!(
                "the signal payload of step `{}` does not decode: {e}",
                step_name::<W>(step)
            ),
        })
    }

    fn set_waiting(
        &mut self,
        waiting_for: Option<String>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.store.set_waiting(&self.claim, waiting_for).await })
    }

    fn parks_waits(&self) -> bool {
        self.parks_waits
    }
}

/// Decodes journal records for replay (what is left after the retries' rewinds), checking
/// each against the definition.
pub(super) fn decode_journal<W: Durable>(
    run_id: &RunId,
    records: Vec<JournalRecord>,
) -> Result<Replay<W::__Out>, StoreError> {
    let def = W::definition();
    crate::store::effective_journal(records)
        .into_iter()
        .map(|record| {
            let seq = record.seq;
            let corrupt = |detail: String| StoreError::Corrupt {
                run_id: run_id.clone(),
                seq: Some(seq),
                detail,
            };
            let index = |name: &str| {
                step_index(def, name).ok_or_else(|| {
                    corrupt(format!(
                        "step `{name}` is not in the definition of `{}`",
                        def.name
                    ))
                })
            };
            let output = |step: StepIndex, item: Option<usize>, bytes: &[u8]| {
                W::__decode_out(step, item.unwrap_or(0), bytes).map_err(|e| {
                    corrupt(format!(
                        "the output of step `{}` does not decode: {e}",
                        def.steps[step as usize].name
                    ))
                })
            };
            let replayed = match record.event {
                JournalEvent::StepCompleted {
                    step,
                    output: bytes,
                } => {
                    let step = index(&step)?;
                    Replayed::Output {
                        step,
                        item: None,
                        out: output(step, None, &bytes)?,
                    }
                }
                JournalEvent::ItemCompleted {
                    step,
                    item,
                    output: bytes,
                } => {
                    let step = index(&step)?;
                    let item = Some(item as usize);
                    Replayed::Output {
                        step,
                        item,
                        out: output(step, item, &bytes)?,
                    }
                }
                JournalEvent::WaitStarted { step, at } => Replayed::WaitStarted {
                    step: index(&step)?,
                    at,
                },
                JournalEvent::SignalConsumed { step, payload } => Replayed::Signal {
                    step: index(&step)?,
                    outcome: SignalOutcome::Received(SignalPayload::Encoded(payload)),
                },
                JournalEvent::SignalTimedOut { step } => Replayed::Signal {
                    step: index(&step)?,
                    outcome: SignalOutcome::TimedOut,
                },
                JournalEvent::RetryScheduled {
                    step,
                    item,
                    attempt,
                    due,
                } => Replayed::RetryScheduled {
                    step: index(&step)?,
                    item: item.unwrap_or(0) as usize,
                    attempt,
                    due,
                },
                JournalEvent::Stopped { cause } => Replayed::Stopped { cause },
                JournalEvent::Compensated {
                    step, completion, ..
                } => Replayed::Compensated {
                    step: index(&step)?,
                    completion: completion as usize,
                },
                // `effective_journal` applied them all.
                JournalEvent::Rewound { .. } => {
                    return Err(corrupt("a rewound record outlived its rewinding".into()))
                }
            };
            Ok((seq, replayed))
        })
        .collect()
}

fn step_index(def: &Definition, name: &str) -> Option<StepIndex> {
    def.steps
        .iter()
        .position(|s| s.name == name)
        .map(|i| i as StepIndex)
}
