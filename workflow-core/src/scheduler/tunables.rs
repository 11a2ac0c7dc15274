//! A step's tunables for this run: the definition's retry, timeout and concurrency, or the
//! run's overrides of them ([`RunOptions::retry`] and its siblings). Without overrides
//! nothing is copied: the definition is read in place.

use super::Driver;
use crate::definition::{Definition, Policy, StepIndex};
use crate::options::{Override, RunOptions};
use crate::workflow::Workflow;

/// One step's tunables, when the run overrides some.
#[derive(Clone, Copy)]
pub(super) struct Tunables {
    policy: Policy,
    concurrency: Option<u32>,
}

/// Every step's tunables with the run's overrides applied; `None` without overrides. An
/// override naming no step of `def` (a step of another workflow), or a retry override of a
/// step declared without `retry` (its input is not kept for another attempt), is ignored with
/// a warning.
pub(super) fn resolve(def: &Definition, options: &RunOptions) -> Option<Vec<Tunables>> {
    if options.overrides.is_empty() {
        return None;
    }
    let mut steps: Vec<Tunables> = def
        .steps
        .iter()
        .map(|s| Tunables {
            policy: s.policy,
            concurrency: s.for_each.and_then(|f| f.concurrency),
        })
        .collect();
    for (name, value) in &options.overrides {
        let Some(index) = def.steps.iter().position(|s| s.name == *name) else {
            tracing::warn!(
                workflow = def.name,
                step = name,
                "override of an unknown step ignored"
            );
            continue;
        };
        let step = &mut steps[index];
        match *value {
            // Only a step declared with `retry` keeps its input for another attempt.
            Override::Retry(_) if def.steps[index].policy.retries == 0 => {
                tracing::warn!(
                    workflow = def.name,
                    step = name,
                    "retry override of a step without `retry` in its definition ignored"
                );
            }
            Override::Retry(retries) => step.policy.retries = retries,
            Override::Timeout(timeout) => step.policy.timeout = Some(timeout),
            Override::Concurrency(limit) => step.concurrency = Some(limit),
        }
    }
    Some(steps)
}

impl<W: Workflow> Driver<'_, '_, W> {
    /// The retry and timeout policy of `step` in this run.
    pub(super) fn policy(&self, step: StepIndex) -> &Policy {
        match &self.tunables {
            Some(steps) => &steps[step as usize].policy,
            None => &self.def.steps[step as usize].policy,
        }
    }

    /// The per-attempt timeout of `step` in this run (the compact table answers for the many
    /// steps without one when the run overrides nothing).
    pub(super) fn timeout(&self, step: StepIndex) -> Option<std::time::Duration> {
        if self.tunables.is_none() && !self.flows.steps[step as usize].timed {
            return None;
        }
        self.policy(step).timeout
    }

    /// How many items of the `for_each` step `step` may run at once in this run.
    pub(super) fn concurrency(&self, step: StepIndex) -> Option<u32> {
        match &self.tunables {
            Some(steps) => steps[step as usize].concurrency,
            None => self.def.steps[step as usize]
                .for_each
                .and_then(|f| f.concurrency),
        }
    }
}
