//! What a run keeps only when it uses signals, long retries, child workflows, compensations
//! done before a restart or a journal replay: one box, made on first use, so that the many
//! runs that use none of these neither make nor drop eight empty collections, and the run's
//! future (moved into its box when the run starts) stays smaller.

// Ordered maps: an empty `BTreeMap` costs nothing to make (no random hash keys).
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use super::Driver;
use crate::definition::StepIndex;
use crate::journal::SignalOutcome;
use crate::workflow::Workflow;

/// The rarely used part of a run's state (see the module's doc).
#[derive(Default)]
pub(super) struct Rare {
    /// Saga completions already compensated before a restart.
    pub compensated: BTreeSet<(StepIndex, usize)>,
    /// How each kept completion of a child workflow step is undone, and its item.
    pub child_undos: BTreeMap<(StepIndex, usize), (Option<usize>, Option<crate::child::ChildUndo>)>,
    /// What each signal step got.
    pub signals: BTreeMap<StepIndex, SignalOutcome>,
    /// When each signal step began waiting.
    pub wait_started: BTreeMap<StepIndex, SystemTime>,
    /// Signal waits left to the store (a parking engine), with their deadlines.
    pub parked: Vec<(StepIndex, Option<SystemTime>)>,
    /// Retries put off past a long backoff, journaled: (step, item) -> (attempt, due).
    pub pending_retries: BTreeMap<(StepIndex, usize), (u32, SystemTime)>,
    /// Retries left to the store (a parking engine): (step, due).
    pub parked_retries: Vec<(StepIndex, SystemTime)>,
    /// `for_each` items whose results were replayed from the journal.
    pub replayed_items: BTreeMap<StepIndex, BTreeSet<usize>>,
}

impl<W: Workflow> Driver<'_, '_, W> {
    /// The rare state, if the run made it.
    pub(super) fn rare(&self) -> Option<&Rare> {
        self.rare.as_deref()
    }

    /// The rare state, made now if the run had none.
    pub(super) fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_default()
    }

    /// True when saga completion `completion` of `step` was compensated before a restart.
    pub(super) fn was_compensated(&self, step: StepIndex, completion: usize) -> bool {
        self.rare()
            .is_some_and(|rare| rare.compensated.contains(&(step, completion)))
    }
}
