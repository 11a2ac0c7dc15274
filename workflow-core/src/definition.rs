//! The static shape of a workflow, emitted by `#[workflow]` as a `static` item.

/// Index of a step inside [`Definition::steps`].
pub type StepIndex = u16;

/// The static definition of a workflow graph, returned by [`crate::Workflow::definition`].
///
/// It is built at compile time by `#[workflow]`; the runtime reads it, never mutates it.
#[derive(Debug)]
pub struct Definition {
    /// Workflow name (`name = ".."` on `#[workflow]`, else the type name).
    pub name: &'static str,
    /// Workflow version (`version = N` on `#[workflow]`, else 1).
    pub version: u32,
    /// Hash of [`Definition::canonical`]: a run resumes only under a definition with the hash
    /// it started with.
    pub hash: u64,
    /// What the hash covers, one line per step: the graph, step names, input and output
    /// types, signals and compensations; not the tunables (`retry`, `backoff`, `timeout`,
    /// `deadline`, `concurrency`, `max_passes`, `compensation_retry`), whose new values
    /// apply to runs in flight.
    pub canonical: &'static str,
    /// Steps in declaration order.
    pub steps: &'static [StepDef],
    /// The scheduler's compact per-step table, made on the first run.
    #[doc(hidden)]
    pub __flow: crate::step_flow::FlowTable,
}

impl Definition {
    /// True when a completed run of it may have something to undo: a saga step, or a child
    /// workflow step.
    pub fn has_compensations(&self) -> bool {
        self.steps.iter().any(StepDef::undoable)
    }
}

/// One step of a [`Definition`].
#[derive(Debug)]
pub struct StepDef {
    /// Stable step name (the method name, or `name = ".."`).
    pub name: &'static str,
    /// How the step waits for its upstream steps.
    pub join: Join,
    /// Upstream steps in declared order (back edges of loops included).
    pub upstream: &'static [StepIndex],
    /// Outgoing edges, computed at compile time.
    pub downstream: &'static [Edge],
    /// The `branch = PATTERN` gating the step's single upstream edge, as source text.
    pub branch: Option<&'static str>,
    /// Present when the step is mapped over its upstream's items (`for_each`).
    pub for_each: Option<ForEach>,
    /// Present when the step heads a loop (`max_passes = N`).
    pub loop_head: Option<LoopHead>,
    /// True when this step's output can be the workflow's output.
    pub is_output: bool,
    /// Failure policy: retries and per-attempt timeout.
    pub policy: Policy,
    /// For a saga step: the method that undoes it.
    pub compensation: Option<Compensation>,
    /// The method whose output replaces the step's when the step fails for good
    /// (`on_failure = method`).
    pub fallback: Option<&'static str>,
    /// `after = first(a, b)`: when the first upstream delivers, the others are cancelled
    /// (dropped; a saga step among them that completed anyway is compensated).
    pub race: bool,
    /// For a step with a `Signal<T>` parameter: the signal it waits for.
    pub signal: Option<SignalDef>,
    /// For a step that runs a child workflow (`workflow = Child`): the child's definition.
    pub child: Option<ChildDef>,
}

impl StepDef {
    /// True when a completed run of this step is undone if the run stops early: a saga step,
    /// or a child workflow step (whose child undoes its own saga steps, as a unit).
    pub fn undoable(&self) -> bool {
        self.compensation.is_some() || self.child.is_some()
    }
}

/// The child workflow a step runs (`#[step(workflow = Child)]`).
#[derive(Debug, Clone, Copy)]
pub struct ChildDef {
    /// The child's definition, nested in the parent's (diagrams draw it as a subgraph).
    pub definition: fn() -> &'static Definition,
}

/// The signal a step waits for.
#[derive(Debug, Clone, Copy)]
pub struct SignalDef {
    /// The signal's name (the parameter's name).
    pub name: &'static str,
    /// How long the step waits (`deadline = "48h"`); then it receives `Signal::TimedOut`.
    pub deadline: Option<std::time::Duration>,
}

/// The compensation of a saga step.
#[derive(Debug, Clone, Copy)]
pub struct Compensation {
    /// The compensation method's name.
    pub name: &'static str,
    /// Its retry policy (`compensation_retry = N`; by default 2 retries with backoff).
    pub policy: Policy,
}

/// How a step waits for its upstream steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// No `after`: runs first and receives the workflow input.
    Start,
    /// `after = a`: runs when `a` completes (and its branch, if any, is taken).
    Single,
    /// `after = [a, b]`: runs when all of them completed.
    All,
    /// `after = any(a, b)`: runs once, with the output of the first one to complete.
    Any,
}

/// An edge from one step to a downstream step.
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    /// Downstream step.
    pub to: StepIndex,
    /// For a branch edge: the arm index among the upstream's branches, in declaration order.
    pub arm: Option<u16>,
    /// True for a loop's back edge into its head.
    pub back: bool,
}

/// Settings of a `for_each` step.
#[derive(Debug, Clone, Copy)]
pub struct ForEach {
    /// Maximum items in flight at once (`concurrency = N`); `None` runs all at once.
    pub concurrency: Option<u32>,
}

/// A loop head: the step a back edge returns to.
#[derive(Debug, Clone, Copy)]
pub struct LoopHead {
    /// `max_passes = N`: how many times the head may run in one execution.
    pub max_passes: u32,
    /// The other steps of the loop, reset at each new iteration.
    pub body: &'static [StepIndex],
}

/// Retry and timeout policy of a step.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Attempts after the first one (`retry = N`).
    pub retries: u32,
    /// Pause before a retry.
    pub backoff: Backoff,
    /// Per-attempt timeout (`timeout = "10s"`).
    pub timeout: Option<std::time::Duration>,
}

impl Policy {
    /// No retry, no timeout.
    pub const NONE: Policy = Policy {
        retries: 0,
        backoff: Backoff::None,
        timeout: None,
    };
}

/// Pause between attempts of a retried step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Retry at once.
    None,
    /// The same pause before every retry.
    Fixed(std::time::Duration),
    /// `base * 2^(attempt-1)`, capped at `max`, with up to 50% random jitter subtracted.
    Exponential {
        /// Pause before the first retry.
        base: std::time::Duration,
        /// Upper bound of any pause.
        max: std::time::Duration,
    },
}

impl Definition {
    /// Looks a step up by name.
    pub fn step(&self, name: &str) -> Option<&StepDef> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Indices of the start steps.
    pub fn start_steps(&self) -> impl Iterator<Item = StepIndex> + '_ {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.join == Join::Start)
            .map(|(i, _)| i as StepIndex)
    }
}

impl Backoff {
    /// The pause before the retry that follows failed attempt number `attempt` (from 1).
    pub fn pause(&self, attempt: u32) -> std::time::Duration {
        match *self {
            Backoff::None => std::time::Duration::ZERO,
            Backoff::Fixed(pause) => pause,
            Backoff::Exponential { base, max } => {
                let factor = 1u32
                    .checked_shl(attempt.saturating_sub(1))
                    .unwrap_or(u32::MAX);
                let pause = base.saturating_mul(factor).min(max);
                pause.mul_f64(1.0 - 0.5 * jitter_fraction())
            }
        }
    }
}

/// A pseudo-random number in `[0, 1)`, from the standard library's per-process random keys.
pub(crate) fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn exponential_backoff_doubles_is_capped_and_jitters_down_by_at_most_half() {
        let backoff = Backoff::Exponential {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for (attempt, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            let full = Duration::from_millis(full);
            for _ in 0..50 {
                let pause = backoff.pause(attempt);
                assert!(
                    pause <= full && pause >= full / 2,
                    "attempt {attempt}: {pause:?}"
                );
            }
        }
        let distinct: std::collections::BTreeSet<_> = (0..50).map(|_| backoff.pause(3)).collect();
        assert!(distinct.len() > 1, "jitter varies the pause");
    }

    #[test]
    fn fixed_and_no_backoff() {
        assert_eq!(Backoff::None.pause(3), Duration::ZERO);
        let fixed = Backoff::Fixed(Duration::from_secs(2));
        assert_eq!(fixed.pause(1), fixed.pause(7));
    }
}
