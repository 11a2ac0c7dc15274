//! Fallbacks (`on_failure = method`): when a step fails for good, its fallback's output stands
//! in for the step's, and the run goes on as if the step had succeeded. The fallback runs once,
//! without retry or timeout; its output is journaled like the step's, so a resumed run does not
//! run it again. If the fallback fails too, the step fails with the fallback's error.

use super::{Driver, Tag};
use crate::error::StepError;
use crate::events::RunEvent;
use crate::task::Task;
use crate::workflow::Workflow;

/// The attempt number a fallback's task carries (attempts of the step count from 1).
pub(super) const FALLBACK_ATTEMPT: u32 = u32::MAX;

impl<'a, W: Workflow + Sync> Driver<'a, '_, W> {
    /// Starts the fallback of a step that failed for good with `error`; false when the step has
    /// none (or this was its fallback).
    pub(super) fn fall_back(&mut self, tag: Tag, error: &StepError) -> bool {
        if tag.attempt == FALLBACK_ATTEMPT {
            return false;
        }
        let workflow: &'a W = self.workflow;
        let Some(future) = workflow.__fallback(&mut self.state, tag.step, tag.item, error.clone())
        else {
            return false;
        };
        let def = &self.def.steps[tag.step as usize];
        tracing::warn!(step = def.name, attempts = tag.attempt, %error, "step failed; its fallback runs");
        if let Some(rec) = self.recorder.as_deref_mut() {
            rec.fell_back(tag.step as usize, error);
        }
        let item = def.for_each.map(|_| tag.item);
        self.emit(|| RunEvent::FellBack {
            step: tag.step,
            item,
            error: error.to_string(),
        });
        let fallback = Tag {
            attempt: FALLBACK_ATTEMPT,
            ..tag
        };
        self.in_flight
            .push(Task::attempt(fallback, None, future, None));
        true
    }
}
