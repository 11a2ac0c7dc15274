//! Driving one claimed run: replay its journal through the scheduler, then commit, park,
//! finish or give it back, every write under the claim.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::Instrument;

use super::journal::{decode_journal, StoreJournal};
use super::{store_error, DurableEngine};
use crate::context::{RunInfo, RunLimits};
use crate::error::WorkflowError;
use crate::history::RunHistory;
use crate::options::{CancellationToken, RunOptions};
use crate::run_id::RunId;
use crate::scheduler::{drive_durable, Drive, Driven, Recorder};
use crate::store::{Claim, ClaimedRun, Park, Parked, RunEnd, RunRecord, RunStatus, StoreError};
use crate::stored_error::StoredError;
use crate::workflow::Durable;

/// How a run executing here is stopped from outside.
#[derive(Clone, Default)]
pub(crate) struct RunControl {
    /// A cancel: drop in-flight steps, compensate.
    pub cancel: CancellationToken,
    /// A lost lease: stop at once, write nothing more.
    pub fence: CancellationToken,
}

/// Why a drive of a claim ended without the run's result; the run is in the store, where
/// its next owner (maybe this process again) continues it.
#[derive(Debug)]
pub(crate) enum Suspended {
    /// Parked until a signal, a deadline or a cancel.
    Parked,
    /// Another worker owns the run now.
    LeaseLost,
    /// Already executing in this process under an older claim.
    Busy,
    /// A store failure stopped it; it was given back to be claimed again.
    StoreFailed,
}

/// What driving a claim gave: the run's result, or why it is suspended.
pub(crate) type ClaimOutcome<O> = Result<Result<O, WorkflowError>, Suspended>;

impl DurableEngine {
    /// Executes a claimed run until it finishes or must be suspended. With `parks`, a run
    /// whose only work left is waiting for signals is parked in the store.
    pub(crate) async fn drive_claim<W: Durable + Sync>(
        &self,
        workflow: &W,
        claimed: ClaimedRun,
        options: RunOptions,
        parks: bool,
    ) -> (ClaimOutcome<W::Output>, RunHistory) {
        let ClaimedRun { claim, run } = claimed;
        let mut history = Recorder::new(W::definition()).into_history();
        let Some(_active) = self.activate(&claim.run_id, options.cancel.as_ref()) else {
            self.release(&claim).await;
            return (Err(Suspended::Busy), history);
        };
        let control = self.control(&claim.run_id);
        if run.summary.cancel_requested {
            control.cancel.cancel();
        }
        let mut guard = ClaimGuard {
            engine: self,
            claim: Some(claim.clone()),
        };
        let mut seen = run.summary.signal_seq;
        loop {
            let mut recorder = Recorder::new(W::definition());
            let driven = self
                .drive_once(
                    workflow,
                    &claim,
                    &run,
                    &control,
                    &options,
                    parks,
                    &mut recorder,
                )
                .await;
            history = recorder.into_history();
            let outcome = match driven {
                Ok(driven) => self.settle::<W>(&claim, &run, driven, seen, parks).await,
                Err(error) => self.refuse::<W>(&claim, error, parks).await,
            };
            match outcome {
                Settled::Done(outcome) => {
                    if !matches!(outcome, Ok(Err(WorkflowError::Interrupted { .. }))) {
                        guard.claim = None;
                    }
                    return (outcome, history);
                }
                Settled::Woken(signal_seq) => seen = signal_seq,
            }
        }
    }

    /// One pass of the scheduler over the run, from its journal.
    #[allow(clippy::too_many_arguments)]
    async fn drive_once<W: Durable + Sync>(
        &self,
        workflow: &W,
        claim: &Claim,
        run: &RunRecord,
        control: &RunControl,
        options: &RunOptions,
        parks: bool,
        recorder: &mut Recorder,
    ) -> Result<Driven<W::Output>, StoreError> {
        let def = W::definition();
        let run_id = &claim.run_id;
        let input = super::undo::decode_input::<W>(run_id, run)?;
        let records = self.store().journal(run_id).await?;
        let next_seq = records.len() as u64;
        // Records lost from the end of the journal (a damaged page or index): the run had more
        // when it last left a worker. Reported, never re-run.
        if next_seq < run.summary.journal_len {
            return Err(StoreError::Corrupt {
                run_id: run_id.clone(),
                seq: Some(next_seq),
                detail: format!(
                    "the journal has {next_seq} records, but the run had {} when it last left a \
                     worker: records {next_seq}.. are lost",
                    run.summary.journal_len
                ),
            });
        }
        let replay = decode_journal::<W>(run_id, records)?;
        let mut options = options.clone().cancel_token(control.cancel.clone());
        options.fence = Some(control.fence.clone());
        options.trace_parent = run.summary.trace_context.clone();
        self.feed().tap(&mut options, def, run_id);
        if let Some(at) = run.summary.deadline_at {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            options.deadline = Some(options.deadline.map_or(left, |d| d.min(left)));
            options.deadline_at = Some(at);
        }
        let bell = self.bell(run_id);
        let mut journal =
            StoreJournal::<W>::new(self.store_arc(), claim.clone(), next_seq, bell, parks);
        let info = Arc::new(RunInfo {
            workflow: def.name,
            id: run_id.clone().into(),
            engine: Some(self.clone()),
            limits: RunLimits::of(&options),
            children: crate::child::Children::durable(W::__child),
            trace: Default::default(),
        });
        let span = tracing::info_span!("workflow_run", workflow = def.name, run_id = %run_id, epoch = claim.epoch);
        let mode = Drive {
            options: &options,
            journal: Some(&mut journal),
            replay,
        };
        Ok(drive_durable(workflow, input, info, mode, Some(recorder))
            .instrument(span)
            .await)
    }

    /// Writes what a drive ended with: the run's end, its park, or nothing (lease lost).
    async fn settle<W: Durable>(
        &self,
        claim: &Claim,
        run: &RunRecord,
        driven: Driven<W::Output>,
        seen: u64,
        parks: bool,
    ) -> Settled<W::Output> {
        match driven {
            Driven::Fenced { rejected } => {
                self.count_fenced(rejected);
                Settled::Done(Err(Suspended::LeaseLost))
            }
            Driven::Park {
                wake_at,
                waiting_for,
            } => {
                let wake_at = match (wake_at, run.summary.deadline_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let park = Park {
                    wake_at,
                    waiting_for: Some(waiting_for),
                    seen_signal_seq: seen,
                };
                match self.store().park(claim, &park).await {
                    Ok(Parked::Parked) => Settled::Done(Err(Suspended::Parked)),
                    Ok(Parked::Woken { signal_seq }) => Settled::Woken(signal_seq),
                    Err(error) => Settled::Done(Err(self.give_back(claim, error).await)),
                }
            }
            Driven::Finished(Err(WorkflowError::Store { error, .. })) => {
                self.refuse::<W>(claim, error, parks).await
            }
            Driven::Finished(result) => {
                let end = match run_end::<W>(&result) {
                    Ok(Some(end)) => end,
                    Ok(None) => return Settled::Done(Ok(result)),
                    Err(error) => {
                        return Settled::Done(Ok(Err(store_error::<W>(&claim.run_id)(error))))
                    }
                };
                match self.store().finish(claim, &end).await {
                    Ok(()) => Settled::Done(Ok(result)),
                    Err(error) => Settled::Done(Err(self.give_back(claim, error).await)),
                }
            }
        }
    }

    /// A store error stopped the run. A store failure gives the run back to be claimed
    /// again; damage (a corrupt record, an input that does not decode) is reported and the run
    /// left as it is: a background worker parks it until an operator acts, so it is not
    /// claimed again and again.
    async fn refuse<W: Durable>(
        &self,
        claim: &Claim,
        error: StoreError,
        parks: bool,
    ) -> Settled<W::Output> {
        if !matches!(error, StoreError::Corrupt { .. }) {
            return Settled::Done(Err(self.give_back(claim, error).await));
        }
        tracing::error!(run_id = %claim.run_id, %error, "run cannot be resumed");
        if parks {
            let mut park = Park {
                wake_at: None,
                waiting_for: Some(format!("repair: {error}")),
                seen_signal_seq: 0,
            };
            // Signals do not repair a run: park past the ones that arrive meanwhile.
            let mut tries = 0;
            loop {
                match self.store().park(claim, &park).await {
                    Ok(Parked::Parked) => break,
                    Ok(Parked::Woken { signal_seq }) if tries < 3 => {
                        park.seen_signal_seq = signal_seq;
                        tries += 1;
                    }
                    _ => {
                        self.release(claim).await;
                        break;
                    }
                }
            }
        } else {
            self.release(claim).await;
        }
        Settled::Done(Ok(Err(store_error::<W>(&claim.run_id)(error))))
    }

    /// After a store failure: give the run back (best effort) so it is claimed again.
    async fn give_back(&self, claim: &Claim, error: StoreError) -> Suspended {
        if matches!(error, StoreError::LeaseLost { .. }) {
            self.count_fenced(true);
            return Suspended::LeaseLost;
        }
        tracing::warn!(run_id = %claim.run_id, %error, "store failure; the run is given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.release(claim).await;
        Suspended::StoreFailed
    }
}

impl DurableEngine {
    /// Gives a claim back. If the store fails, the claim may or may not be released: the
    /// claim loop then gives back whatever this worker holds and does not execute.
    pub(crate) async fn release(&self, claim: &Claim) {
        match self.store().release(claim).await {
            Ok(_) | Err(StoreError::LeaseLost { .. } | StoreError::WorkerLost(_)) => {}
            Err(error) => {
                tracing::warn!(run_id = %claim.run_id, %error, "release failed; will retry");
                self.claimed().suspect_orphans();
            }
        }
    }
}

/// Gives a claim back when its drive is dropped before it settled (the caller's future was
/// dropped, or a test crash point stopped the run), so the run does not wait for this
/// worker's lease to expire.
struct ClaimGuard<'e> {
    engine: &'e DurableEngine,
    claim: Option<Claim>,
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        let (Some(claim), Ok(runtime)) = (self.claim.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let engine = self.engine.clone();
        runtime.spawn(async move { engine.release(&claim).await });
    }
}

/// What [`DurableEngine::settle`] decided.
enum Settled<O> {
    Done(ClaimOutcome<O>),
    /// A signal or cancel arrived as the run was parking: drive it again, having seen this.
    Woken(u64),
}

/// What to store at a run's end (`None`: nothing, the run stays as it is).
fn run_end<W: Durable>(
    result: &Result<W::Output, WorkflowError>,
) -> Result<Option<RunEnd>, StoreError> {
    Ok(match result {
        Ok(output) => {
            let bytes = W::__encode_output(output)
                .map_err(|e| StoreError::Database(format!("cannot encode the output: {e}")))?;
            Some(RunEnd {
                status: RunStatus::Completed,
                output: Some(bytes),
                error: None,
            })
        }
        Err(WorkflowError::Store { .. } | WorkflowError::Interrupted { .. }) => None,
        Err(error @ WorkflowError::Cancelled { .. }) => Some(RunEnd {
            status: RunStatus::Cancelled,
            output: None,
            error: Some(StoredError::from_error(error).encode()),
        }),
        Err(error) => Some(RunEnd {
            status: RunStatus::Failed,
            output: None,
            error: Some(StoredError::from_error(error).encode()),
        }),
    })
}

/// The result of a run that finished before: its decoded output, or its stored error.
pub(super) fn finished_result<W: Durable>(record: &RunRecord) -> Result<W::Output, WorkflowError> {
    let def = W::definition();
    let run_id: &RunId = &record.summary.run_id;
    let corrupt = |detail: String| WorkflowError::Store {
        workflow: def.name,
        run_id: run_id.clone(),
        error: StoreError::Corrupt {
            run_id: run_id.clone(),
            seq: None,
            detail,
        },
    };
    match (&record.summary.status, &record.output) {
        (RunStatus::Completed, Some(bytes)) => W::__decode_output(bytes)
            .map_err(|e| corrupt(format!("the stored output does not decode: {e}"))),
        (RunStatus::Completed, None) => Err(corrupt("completed without a stored output".into())),
        (status, _) => {
            let text = record.error.as_deref().unwrap_or(status.as_str());
            Err(match StoredError::decode(text) {
                Some(stored) => stored.into_error(def, run_id),
                // Stored by an older version: the message only.
                None => WorkflowError::FinishedEarlier {
                    workflow: def.name,
                    run_id: run_id.clone(),
                    status: status.as_str(),
                    error: text.to_owned(),
                },
            })
        }
    }
}
