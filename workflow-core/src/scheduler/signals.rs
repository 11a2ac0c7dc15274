//! Steps that wait for a signal: the wait is journaled (with its start time, so a deadline
//! survives a restart), the signal is consumed exactly once (journaled in the same
//! transaction), and every attempt of the step gets the same signal. When a run's only work
//! left is waiting, a worker-driven durable run is parked: its claim is released and the store
//! wakes it when a signal arrives or a deadline passes.

use std::any::Any;
use std::time::SystemTime;

use super::{Driver, Status, Stop};
use crate::definition::StepIndex;
use crate::events::RunEvent;
use crate::journal::{JournalEvent, SignalOutcome, SignalPayload};
use crate::task::{Tag, Task};
use crate::workflow::Workflow;

impl<'a, W: Workflow + Sync> Driver<'a, '_, W> {
    /// A signal step became ready without its signal: journal the wait and start waiting
    /// (or, on a parking engine, note the wait for the park).
    pub(super) async fn wait_for_signal(&mut self, step: StepIndex) -> Result<(), Stop> {
        let def = &self.def.steps[step as usize];
        let Some(signal) = def.signal else {
            return Ok(());
        };
        let known = self
            .rare()
            .and_then(|rare| rare.wait_started.get(&step))
            .copied();
        let Some(journal) = self.journal.as_deref_mut() else {
            return Err(Stop::NoSignals { step });
        };
        let started = match known {
            Some(at) => at,
            None => {
                let at = SystemTime::now();
                let event = JournalEvent::WaitStarted {
                    step: def.name.to_owned(),
                    at,
                };
                journal.record(event).await.map_err(Stop::Store)?;
                self.rare
                    .get_or_insert_default()
                    .wait_started
                    .insert(step, at);
                at
            }
        };
        let deadline = signal.deadline.map(|d| started + d);
        if let Some(events) = &self.events {
            events.push(RunEvent::WaitingForSignal {
                step,
                signal: signal.name,
            });
        }
        let st = &mut self.steps[step as usize];
        st.status = Status::Signalled;
        if journal.parks_waits() {
            // Look once now (the claim's view of the run is fresh); park later if nothing came.
            if deadline.is_some_and(|at| at <= SystemTime::now()) {
                return self.signal_ready(step, Ok(false)).await;
            }
            if journal.has_signal(signal.name).await.map_err(Stop::Store)? {
                return self.signal_ready(step, Ok(true)).await;
            }
            self.rare
                .get_or_insert_default()
                .parked
                .push((step, deadline));
            return Ok(());
        }
        journal
            .set_waiting(Some(signal.name.to_owned()))
            .await
            .map_err(Stop::Store)?;
        let wait = journal.signal_ready(signal.name, deadline);
        let tag = Tag {
            step,
            item: 0,
            generation: st.generation,
            attempt: 0,
        };
        self.in_flight.push(Task::wait(tag, wait));
        Ok(())
    }

    /// The wait of `step` ended: its signal is stored (`true`) or its deadline passed.
    pub(super) async fn signal_ready(
        &mut self,
        step: StepIndex,
        ready: Result<bool, crate::store::StoreError>,
    ) -> Result<(), Stop> {
        let def = &self.def.steps[step as usize];
        let Some(signal) = def.signal else {
            return Ok(());
        };
        let Some(journal) = self.journal.as_deref_mut() else {
            return Err(Stop::NoSignals { step });
        };
        let outcome = if ready.map_err(Stop::Store)? {
            match journal
                .consume_signal(step, signal.name)
                .await
                .map_err(Stop::Store)?
            {
                Some(payload) => SignalOutcome::Received(payload),
                None => {
                    // Consumed elsewhere meanwhile: wait again.
                    self.steps[step as usize].status = Status::Ready;
                    self.ready.push(step);
                    return Ok(());
                }
            }
        } else {
            let event = JournalEvent::SignalTimedOut {
                step: def.name.to_owned(),
            };
            journal.record(event).await.map_err(Stop::Store)?;
            SignalOutcome::TimedOut
        };
        if !journal.parks_waits() {
            journal.set_waiting(None).await.map_err(Stop::Store)?;
        }
        let timed_out = matches!(outcome, SignalOutcome::TimedOut);
        self.emit(|| RunEvent::SignalReceived {
            step,
            signal: signal.name,
            timed_out,
        });
        self.rare_mut().signals.insert(step, outcome);
        self.mark_ready(step);
        Ok(())
    }

    /// Nothing is left to run but parked waits and retries: the stop that parks the run until
    /// the first deadline or due retry (or a signal).
    pub(super) fn park(&self) -> Option<Stop> {
        let rare = self.rare()?;
        if rare.parked.is_empty() && rare.parked_retries.is_empty() {
            return None;
        }
        let deadlines = rare.parked.iter().filter_map(|(_, at)| *at);
        let dues = rare.parked_retries.iter().map(|(_, due)| *due);
        let wake_at = deadlines.chain(dues).min();
        let mut names: Vec<String> = rare
            .parked
            .iter()
            .filter_map(|(step, _)| self.def.steps[*step as usize].signal)
            .map(|s| s.name.to_owned())
            .collect();
        names.extend(
            rare.parked_retries
                .iter()
                .map(|(step, _)| format!("retry of `{}`", self.def.steps[*step as usize].name)),
        );
        Some(Stop::Park {
            wake_at,
            waiting_for: names.join(","),
        })
    }

    /// The boxed `Signal<T>` for an attempt of a signal step (`None` for other steps).
    #[inline]
    pub(super) fn signal_for(&self, step: StepIndex) -> Result<Option<Box<dyn Any + Send>>, Stop> {
        if !self.flows.steps[step as usize].signal {
            return Ok(None);
        }
        self.received_signal(step)
    }

    /// What signal step `step` got, as its boxed `Signal<T>`.
    fn received_signal(&self, step: StepIndex) -> Result<Option<Box<dyn Any + Send>>, Stop> {
        match self.rare().and_then(|rare| rare.signals.get(&step)) {
            None => Ok(None),
            Some(SignalOutcome::TimedOut) => Ok(W::__signal_timed_out(step)),
            Some(SignalOutcome::Received(SignalPayload::Value(make))) => Ok(Some(make())),
            Some(SignalOutcome::Received(SignalPayload::Encoded(bytes))) => match self
                .journal
                .as_deref()
            {
                // A payload that does not decode (sent through an untyped entry point, or
                // altered) fails the step for good, naming the signal: the run never hangs on it.
                Some(journal) => journal.decode_signal(step, bytes).map(Some).map_err(|e| {
                    let signal = self.def.steps[step as usize].signal.map_or("?", |s| s.name);
                    Stop::StepFailed {
                        step,
                        item: None,
                        attempts: 1,
                        error: crate::error::StepError::permanent(crate::error::StepError::msg(
                            format!("the payload of signal `{signal}` cannot be read: {e}"),
                        )),
                    }
                }),
                None => Err(Stop::NoSignals { step }),
            },
        }
    }
}
