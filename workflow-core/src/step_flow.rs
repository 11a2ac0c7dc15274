//! The compact per-step table the scheduler's straight-line path reads instead of the step
//! definitions (about 230 bytes each): a few bytes per step, computed once per workflow
//! definition, on its first run, and kept in the definition's static.

use std::fmt;
use std::sync::OnceLock;

use crate::definition::{Definition, Join, StepDef, StepIndex};

/// One step, as the straight-line path needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StepFlow {
    /// The step needs nothing but its future: no items, signal, child workflow, declared
    /// timeout or compensation.
    pub plain: bool,
    /// The one step this step's completion always makes ready, and nothing else: the step's
    /// single edge is unconditional and forward, into a step with no other upstream that is
    /// neither a race nor a loop head.
    pub next: Option<StepIndex>,
}

impl StepFlow {
    fn of(def: &Definition, step: &StepDef) -> StepFlow {
        let plain = step.for_each.is_none()
            && step.signal.is_none()
            && step.policy.timeout.is_none()
            && !step.undoable();
        let next = match step.downstream {
            [edge] if edge.arm.is_none() && !edge.back => {
                let target = &def.steps[edge.to as usize];
                let sole = target.join == Join::Single
                    && target.upstream.len() == 1
                    && !target.race
                    && target.loop_head.is_none();
                sole.then_some(edge.to)
            }
            _ => None,
        };
        StepFlow { plain, next }
    }
}

/// A definition's [`StepFlow`] table, made on first use: the `__flow` field of every
/// [`Definition`] the macro emits (`FlowTable::new()`).
#[doc(hidden)]
#[derive(Default)]
pub struct FlowTable(OnceLock<Box<[StepFlow]>>);

impl FlowTable {
    /// Not made yet.
    pub const fn new() -> FlowTable {
        FlowTable(OnceLock::new())
    }

    /// The table of `def` (whose field this is).
    pub(crate) fn of<'d>(&'d self, def: &Definition) -> &'d [StepFlow] {
        self.0
            .get_or_init(|| def.steps.iter().map(|s| StepFlow::of(def, s)).collect())
    }
}

impl fmt::Debug for FlowTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FlowTable")
    }
}

#[cfg(test)]
mod tests {
    use super::StepFlow;
    use crate::definition::{Definition, Edge, Join, Policy, StepDef};

    const fn step(join: Join, upstream: &'static [u16], downstream: &'static [Edge]) -> StepDef {
        StepDef {
            name: "s",
            join,
            upstream,
            downstream,
            branch: None,
            for_each: None,
            loop_head: None,
            is_output: false,
            policy: Policy::NONE,
            compensation: None,
            fallback: None,
            race: false,
            signal: None,
            child: None,
        }
    }

    const fn edge(to: u16, arm: Option<u16>) -> Edge {
        Edge {
            to,
            arm,
            back: false,
        }
    }

    #[test]
    fn a_chain_step_names_its_next_and_a_join_or_branch_does_not() {
        static STEPS: [StepDef; 5] = [
            // 0 -> 1 (a chain edge); 1 -> 2 and 3 (a fan-out); 2, 3 -> 4 (a join of all).
            step(Join::Start, &[], &[edge(1, None)]),
            step(Join::Single, &[0], &[edge(2, None), edge(3, None)]),
            step(Join::Single, &[1], &[edge(4, None)]),
            step(Join::Single, &[1], &[edge(4, Some(0))]),
            step(Join::All, &[2, 3], &[]),
        ];
        static DEF: Definition = Definition {
            name: "flows",
            version: 1,
            hash: 0,
            canonical: "",
            steps: &STEPS,
            __flow: super::FlowTable::new(),
        };
        let next: Vec<_> = DEF.__flow.of(&DEF).iter().map(|f| f.next).collect();
        assert_eq!(next, [Some(1), None, None, None, None]);
        assert!(DEF.__flow.of(&DEF).iter().all(|f: &StepFlow| f.plain));
    }
}
