//! Steps that wait for a signal: the wait is journaled (with its start time, so a deadline
//! survives a restart), the signal is consumed exactly once (journaled in the same
//! transaction), and every attempt of the step gets the same signal.

use std::any::Any;
use std::time::SystemTime;

use super::{Driver, Status, Stop};
use crate::definition::StepIndex;
use crate::store::RecordKind;
use crate::task::{Tag, Task};
use crate::workflow::Workflow;

impl<'a, W: Workflow + Sync> Driver<'a, '_, W> {
    /// A signal step became ready without its signal: journal the wait and start waiting.
    pub(super) async fn wait_for_signal(&mut self, step: StepIndex) -> Result<(), Stop> {
        let def = &self.def.steps[step as usize];
        let Some(signal) = def.signal else {
            return Ok(());
        };
        let Some(journal) = self.journal.as_deref_mut() else {
            return Err(Stop::NoSignals { step });
        };
        let started = match self.wait_started.get(&step) {
            Some(at) => *at,
            None => {
                let now = SystemTime::now();
                let millis = now
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                journal
                    .record(
                        RecordKind::WaitStarted,
                        step,
                        None,
                        millis.to_le_bytes().to_vec(),
                    )
                    .await
                    .map_err(Stop::Store)?;
                self.wait_started.insert(step, now);
                now
            }
        };
        journal
            .set_waiting(Some(signal.name.to_owned()))
            .await
            .map_err(Stop::Store)?;
        let deadline = signal.deadline.map(|d| started + d);
        let wait = journal.signal_ready(signal.name, deadline);
        let st = &mut self.steps[step as usize];
        st.status = Status::Signalled;
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
        let Some(signal) = self.def.steps[step as usize].signal else {
            return Ok(());
        };
        let Some(journal) = self.journal.as_deref_mut() else {
            return Err(Stop::NoSignals { step });
        };
        let bytes = if ready.map_err(Stop::Store)? {
            match journal
                .consume_signal(step, signal.name)
                .await
                .map_err(Stop::Store)?
            {
                Some(bytes) => bytes,
                None => {
                    // Consumed elsewhere meanwhile: wait again.
                    self.steps[step as usize].status = Status::Ready;
                    self.ready.push(step);
                    return Ok(());
                }
            }
        } else {
            journal
                .record(RecordKind::Signal, step, None, Vec::new())
                .await
                .map_err(Stop::Store)?;
            Vec::new()
        };
        journal.set_waiting(None).await.map_err(Stop::Store)?;
        self.signals.insert(step, bytes);
        self.mark_ready(step);
        Ok(())
    }

    /// The boxed `Signal<T>` for an attempt of a signal step (`None` for other steps).
    pub(super) fn signal_for(&self, step: StepIndex) -> Result<Option<Box<dyn Any + Send>>, Stop> {
        if !self.has_signals || self.def.steps[step as usize].signal.is_none() {
            return Ok(None);
        }
        let Some(bytes) = self.signals.get(&step) else {
            return Ok(None);
        };
        if bytes.is_empty() {
            return Ok(W::__signal_timed_out(step));
        }
        match self.journal.as_deref() {
            Some(journal) => journal
                .decode_signal(step, bytes)
                .map(Some)
                .map_err(Stop::Store),
            None => Err(Stop::NoSignals { step }),
        }
    }
}
