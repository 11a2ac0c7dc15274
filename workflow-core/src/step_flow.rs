//! The compact per-step table the scheduler's hot paths read instead of the step definitions
//! (about 230 bytes each, a few cache lines): a few bytes per step, computed once per workflow
//! definition, on its first run, and kept in the definition's static.

use std::fmt;
use std::sync::OnceLock;

use crate::definition::{Definition, Edge, Join, StepDef, StepIndex};

/// One step, as the scheduler's hot paths need it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepFlow {
    /// A `for_each` step.
    pub items: bool,
    /// The step declares a per-attempt timeout.
    pub timed: bool,
    /// A signal step.
    pub signal: bool,
    /// A saga step or a child workflow step: its completions are undone if the run stops.
    pub undoable: bool,
    /// `after = first(..)`: its first delivery cancels its other upstream branches.
    pub race: bool,
    /// How many deliveries make it ready: each upstream for a join of all, else the first.
    pub needs: u16,
    /// Where its outgoing edges begin in [`Flows::edges`] (they end where the next step's
    /// begin): all steps' edges in one array, 16 bytes a step instead of a slice apiece.
    first_edge: u32,
    /// The one step this step's completion always makes ready, and nothing else: the step's
    /// single edge is unconditional and forward, into a step with no other upstream that is
    /// neither a race nor a loop head.
    pub next: Option<StepIndex>,
}

impl StepFlow {
    fn of(def: &Definition, step: &StepDef, first_edge: u32) -> StepFlow {
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
        let needs = match step.join {
            Join::All => step.upstream.len() as u16,
            Join::Start | Join::Single | Join::Any => 1,
        };
        StepFlow {
            items: step.for_each.is_some(),
            timed: step.policy.timeout.is_some(),
            signal: step.signal.is_some(),
            undoable: step.undoable(),
            race: step.race,
            needs,
            first_edge,
            next,
        }
    }

    /// The step needs nothing but its future: no items, signal, declared timeout,
    /// compensation or child workflow.
    pub fn plain(&self) -> bool {
        !(self.items || self.signal || self.timed || self.undoable)
    }
}

/// A definition's per-step table and what the scheduler asks of all its steps at a run's
/// start.
#[derive(Debug)]
pub(crate) struct Flows {
    /// One entry per step, in declaration order.
    pub steps: Box<[StepFlow]>,
    /// Every step's outgoing edges, in step order (a fan-out's are read one after another).
    edges: Box<[Edge]>,
    /// The start steps.
    pub starts: Box<[StepIndex]>,
    /// True when the order of a run's events is fixed by its journal before anything else
    /// happens: signal steps, loops or races.
    pub ordered: bool,
    /// Some step is `after = first(..)`: which racer wins follows the order their wakes come in.
    pub races: bool,
}

impl Flows {
    fn of(def: &'static Definition) -> Flows {
        let mut edges = Vec::new();
        let steps = def
            .steps
            .iter()
            .map(|step| {
                let first_edge = edges.len() as u32;
                edges.extend_from_slice(step.downstream);
                StepFlow::of(def, step, first_edge)
            })
            .collect();
        Flows {
            steps,
            edges: edges.into(),
            starts: def.start_steps().collect(),
            ordered: def
                .steps
                .iter()
                .any(|s| s.signal.is_some() || s.loop_head.is_some() || s.race),
            races: def.steps.iter().any(|s| s.race),
        }
    }

    /// The outgoing edges of `step`.
    #[inline]
    pub fn downstream(&self, step: StepIndex) -> &[Edge] {
        let index = step as usize;
        let end = self
            .steps
            .get(index + 1)
            .map_or(self.edges.len(), |next| next.first_edge as usize);
        &self.edges[self.steps[index].first_edge as usize..end]
    }
}

/// A definition's [`Flows`], made on first use: the `__flow` field of every
/// [`Definition`] the macro emits (`FlowTable::new()`).
#[doc(hidden)]
#[derive(Default)]
pub struct FlowTable(OnceLock<Flows>);

impl FlowTable {
    /// Not made yet.
    pub const fn new() -> FlowTable {
        FlowTable(OnceLock::new())
    }

    /// The flows of `def` (whose field this is).
    pub(crate) fn of(&'static self, def: &'static Definition) -> &'static Flows {
        self.0.get_or_init(|| Flows::of(def))
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
        let flows = DEF.__flow.of(&DEF);
        let next: Vec<_> = flows.steps.iter().map(|f| f.next).collect();
        assert_eq!(next, [Some(1), None, None, None, None]);
        let to: Vec<Vec<u16>> = (0..5)
            .map(|step| flows.downstream(step).iter().map(|e| e.to).collect())
            .collect();
        assert_eq!(to, [vec![1], vec![2, 3], vec![4], vec![4], vec![]]);
        assert_eq!(flows.downstream(3)[0].arm, Some(0));
        // A fan-out of 1,000 steps reads 16 KB of the table, not 32 KB.
        assert_eq!(std::mem::size_of::<StepFlow>(), 16);
        let needs: Vec<_> = flows.steps.iter().map(|f| f.needs).collect();
        assert_eq!(needs, [1, 1, 1, 1, 2]);
        assert!(flows.steps.iter().all(|f: &StepFlow| f.plain() && !f.items));
        assert_eq!(&*flows.starts, &[0]);
        assert!(!flows.ordered && !flows.races);
    }
}
