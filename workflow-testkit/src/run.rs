//! [`TestRun`]: a finished (or interrupted) run, its assertions and renderings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use workflow_core::testing::{StepHandle, TestPlan};
use workflow_core::{
    Definition, Durable, DurableEngine, FailureReport, Finished, RunHistory, RunId, StepOutcome,
    StepRecord, Workflow, WorkflowError,
};

use crate::harness::{open_engine, run_options};
use crate::table;
use crate::temp::TempStore;

/// What a durable run needs to be resumed on a fresh engine.
pub(crate) struct DurableRun<W> {
    pub(crate) workflow: Arc<W>,
    pub(crate) engine: DurableEngine,
    pub(crate) run_id: RunId,
    pub(crate) path: PathBuf,
    /// The run's plan without its crash point.
    pub(crate) plan: Arc<TestPlan>,
    pub(crate) deadline: Option<Duration>,
    /// Declared last: the file is deleted after the engine is dropped.
    pub(crate) temp: Option<Arc<TempStore>>,
}

/// The result and history of one run, with assertions that print expected and actual side by
/// side, and renderings for snapshot tests.
///
/// Step names in assertions are checked against the workflow's definition: an unknown name
/// fails the assertion with the list of the workflow's steps.
pub struct TestRun<W: Workflow> {
    definition: &'static Definition,
    result: Result<W::Output, WorkflowError>,
    history: RunHistory,
    durable: Option<DurableRun<W>>,
}

impl<W: Workflow> TestRun<W> {
    pub(crate) fn new(
        definition: &'static Definition,
        finished: Finished<W::Output>,
        durable: Option<DurableRun<W>>,
    ) -> Self {
        TestRun {
            definition,
            result: finished.result,
            history: finished.history,
            durable,
        }
    }

    /// The run's output or error.
    pub fn result(&self) -> &Result<W::Output, WorkflowError> {
        &self.result
    }

    /// The run's output or error, by value.
    pub fn into_result(self) -> Result<W::Output, WorkflowError> {
        self.result
    }

    /// The run's output. Panics, printing the error and the run's steps, if the run failed.
    #[track_caller]
    pub fn output(&self) -> &W::Output {
        match &self.result {
            Ok(output) => output,
            Err(error) => panic!(
                "expected workflow `{}` to succeed, but the run failed:\n    {error}\n\nsteps:\n{}",
                self.definition.name,
                indent(&self.to_text())
            ),
        }
    }

    /// The run's error. Panics, printing the run's steps, if the run succeeded.
    #[track_caller]
    pub fn error(&self) -> &WorkflowError {
        match &self.result {
            Ok(_) => panic!(
                "expected workflow `{}` to fail, but the run succeeded\n\nsteps:\n{}",
                self.definition.name,
                indent(&self.to_text())
            ),
            Err(error) => error,
        }
    }

    /// What happened after the run stopped early (cancelled steps, compensations), if it did.
    pub fn report(&self) -> Option<&FailureReport> {
        self.result.as_ref().err().and_then(WorkflowError::report)
    }

    /// The run's history: steps with outcomes and attempts, the path, restored steps.
    pub fn history(&self) -> &RunHistory {
        &self.history
    }

    /// The workflow's definition.
    pub fn definition(&self) -> &'static Definition {
        self.definition
    }

    /// For a durable run: its id and the engine it ran on (to read its journal or status).
    pub fn durable(&self) -> Option<(&DurableEngine, &RunId)> {
        self.durable.as_ref().map(|d| (&d.engine, &d.run_id))
    }

    /// Attempts of `step` started in this run (retries and `for_each` items included; 0 for
    /// a step restored from the journal or skipped).
    pub fn attempts<In, Out>(&self, step: StepHandle<W, In, Out>) -> u32 {
        self.record(step.name()).attempts
    }

    /// Asserts the completed steps, in completion order (restored steps included on a resumed
    /// run; a step in a loop once per iteration). Steps that run concurrently may complete in
    /// any order: use [`assert_ran`](TestRun::assert_ran) for them.
    #[track_caller]
    pub fn assert_path(&self, expected: impl StepNames) -> &Self {
        let expected = self.names(expected);
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        if expected != self.history.path {
            self.fail(
                "the path (completed steps, in completion order) differs",
                &table::ordered(&expected, &self.history.path),
            );
        }
        self
    }

    /// Asserts the set of steps that started at least one attempt in this run (in any order;
    /// restored and skipped steps did not run).
    #[track_caller]
    pub fn assert_ran(&self, expected: impl StepNames) -> &Self {
        let actual: Vec<&str> = self
            .history
            .steps
            .iter()
            .filter(|r| r.attempts > 0)
            .map(|r| r.step)
            .collect();
        self.assert_set("the steps that ran differ", expected, &actual)
    }

    /// Asserts the set of skipped steps: never started, because a branch upstream was not
    /// taken, a join could not fire, or the run stopped before they were ready.
    #[track_caller]
    pub fn assert_skipped(&self, expected: impl StepNames) -> &Self {
        let actual = self.history.with_outcome(StepOutcome::Skipped);
        self.assert_set("the skipped steps differ", expected, &actual)
    }

    /// Asserts the set of steps restored from the journal by a resumed run instead of being
    /// run again.
    #[track_caller]
    pub fn assert_restored(&self, expected: impl StepNames) -> &Self {
        let actual = self.history.restored.clone();
        self.assert_set(
            "the steps restored from the journal differ",
            expected,
            &actual,
        )
    }

    /// Asserts the saga steps whose compensation succeeded, in the order they were compensated
    /// (reverse completion order). A compensation that failed is not in the list.
    #[track_caller]
    pub fn assert_compensated(&self, expected: impl StepNames) -> &Self {
        let expected = self.names(expected);
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        let actual = self
            .report()
            .map(FailureReport::compensated)
            .unwrap_or_default();
        if expected != actual {
            self.fail(
                "the compensated saga steps (in compensation order) differ",
                &table::ordered(&expected, &actual),
            );
        }
        self
    }

    /// Asserts that the compensation of saga step `step` ran and still failed after its
    /// retries.
    #[track_caller]
    pub fn assert_compensation_failed<In, Out>(&self, step: StepHandle<W, In, Out>) -> &Self {
        let failed: Vec<&str> = self
            .report()
            .map(|r| r.failed_compensations().map(|c| c.step).collect())
            .unwrap_or_default();
        if !failed.contains(&step.name()) {
            self.fail(
                &format!("the compensation of `{}` did not fail", step.name()),
                &table::sets(&[step.name()], &failed, |s| self.rank(s)),
            );
        }
        self
    }

    /// Asserts the attempts of `step` started in this run.
    #[track_caller]
    pub fn assert_attempts<In, Out>(&self, step: StepHandle<W, In, Out>, expected: u32) -> &Self {
        let actual = self.attempts(step);
        if actual != expected {
            let (e, a) = (attempts(expected), attempts(actual));
            self.fail(
                &format!("the attempts of step `{}` differ", step.name()),
                &table::ordered(&[&e], &[&a]),
            );
        }
        self
    }

    /// Asserts how `step` ended.
    #[track_caller]
    pub fn assert_outcome<In, Out>(
        &self,
        step: StepHandle<W, In, Out>,
        expected: StepOutcome,
    ) -> &Self {
        let actual = self.record(step.name()).outcome;
        if actual != expected {
            self.fail(
                &format!("the outcome of step `{}` differs", step.name()),
                &table::ordered(&[outcome(expected)], &[outcome(actual)]),
            );
        }
        self
    }

    /// One line per step, in declaration order: name, outcome, attempts (or `restored`), and
    /// what happened to its compensation. Deterministic, for snapshot tests.
    ///
    /// ```text
    /// validate  completed  1 attempt
    /// reserve   completed  1 attempt   compensated by release
    /// ship      failed     3 attempts
    /// ```
    pub fn to_text(&self) -> String {
        let name_width = self.history.steps.iter().map(|r| r.step.len()).max();
        let name_width = name_width.unwrap_or(0);
        let lines: Vec<(String, &str, String, String)> = self
            .history
            .steps
            .iter()
            .map(|record| {
                let restored = self.history.restored.contains(&record.step);
                let tries = match (record.attempts, restored) {
                    (0, true) => "restored".to_owned(),
                    (n, true) => format!("{}, restored", attempts(n)),
                    (0, false) => String::new(),
                    (n, false) => attempts(n),
                };
                (
                    record.step.to_owned(),
                    outcome(record.outcome),
                    tries,
                    self.compensation_note(record),
                )
            })
            .collect();
        let tries_width = lines.iter().map(|l| l.2.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (name, outcome, tries, note) in lines {
            let line = format!("{name:name_width$}  {outcome:9}  {tries:tries_width$}  {note}");
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The workflow's Mermaid flowchart with each step styled by its outcome: classes
    /// `completed`, `skipped`, `failed`, `cancelled`, and `compensated` for a completed saga
    /// step that was undone (see [`RunHistory::to_mermaid`](workflow_core::RunHistory::to_mermaid)).
    pub fn to_mermaid(&self) -> String {
        let mut history = self.history.clone();
        history.compensated = self
            .report()
            .map(FailureReport::compensated)
            .unwrap_or_default();
        history.to_mermaid(self.definition)
    }

    fn compensation_note(&self, record: &StepRecord) -> String {
        let Some(report) = self.report() else {
            return String::new();
        };
        match report.compensations.iter().find(|c| c.step == record.step) {
            Some(c) if c.error.is_none() => format!("compensated by {}", c.compensation),
            Some(c) => format!(
                "compensation {} FAILED after {}",
                c.compensation,
                attempts(c.attempts)
            ),
            None => String::new(),
        }
    }

    fn record(&self, name: &str) -> &StepRecord {
        self.history.step(name).unwrap_or_else(|| {
            panic!(
                "workflow-testkit: no step `{name}` in the history of `{}`",
                self.definition.name
            )
        })
    }

    #[track_caller]
    fn assert_set(&self, what: &str, expected: impl StepNames, actual: &[&str]) -> &Self {
        let expected = self.names(expected);
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        let mut e = expected.clone();
        let mut a = actual.to_vec();
        e.sort_unstable();
        e.dedup();
        a.sort_unstable();
        a.dedup();
        if e != a {
            self.fail(
                &format!("{what} (compared as sets)"),
                &table::sets(&e, &a, |s| self.rank(s)),
            );
        }
        self
    }

    /// The expected step names, each checked against the definition.
    #[track_caller]
    fn names(&self, names: impl StepNames) -> Vec<String> {
        let names = names.into_names();
        for name in &names {
            if !self.definition.steps.iter().any(|s| s.name == name) {
                let steps: Vec<&str> = self.definition.steps.iter().map(|s| s.name).collect();
                panic!(
                    "workflow-testkit: workflow `{}` has no step `{name}`; its steps are: {}",
                    self.definition.name,
                    steps.join(", ")
                );
            }
        }
        names
    }

    /// Declaration order of a step, for sorting table rows.
    fn rank(&self, name: &str) -> usize {
        self.definition
            .steps
            .iter()
            .position(|s| s.name == name)
            .unwrap_or(usize::MAX)
    }

    #[track_caller]
    fn fail(&self, what: &str, table: &str) -> ! {
        let result = match &self.result {
            Ok(_) => "succeeded".to_owned(),
            Err(error) => format!("failed: {error}"),
        };
        panic!(
            "assertion failed: {what}\n{table}\nrun of `{}` {result}\nsteps:\n{}",
            self.definition.name,
            indent(&self.to_text())
        );
    }
}

impl<W: Durable + Sync> TestRun<W> {
    /// Resumes this durable run on a NEW engine over the same SQLite file, with the same mocks
    /// and faults but without the crash point, as a restarted process would. The returned
    /// run's history lists the steps restored from the journal; they did not run again.
    ///
    /// Panics on an in-memory run (nothing survives it).
    pub async fn resume_fresh(&self) -> TestRun<W> {
        let Some(durable) = &self.durable else {
            panic!(
                "workflow-testkit: `resume_fresh` needs a durable run: build the harness with \
                 `Harness::sqlite` or `Harness::sqlite_temp`"
            );
        };
        let engine = open_engine(&durable.path).await;
        let options = run_options(durable.plan.clone(), durable.deadline);
        let finished = engine
            .execute(&*durable.workflow, durable.run_id.clone(), None, options)
            .await;
        let resumed = DurableRun {
            workflow: durable.workflow.clone(),
            engine,
            run_id: durable.run_id.clone(),
            path: durable.path.clone(),
            plan: durable.plan.clone(),
            deadline: durable.deadline,
            temp: durable.temp.clone(),
        };
        TestRun::new(self.definition, finished, Some(resumed))
    }
}

impl<W: Workflow> std::fmt::Debug for TestRun<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRun")
            .field("workflow", &self.definition.name)
            .field("ok", &self.result.is_ok())
            .field("error", &self.result.as_ref().err())
            .field("history", &self.history)
            .finish()
    }
}

/// Step names for the assertions of [`TestRun`]: an array (`["a", "b"]`, or `[]`), a slice,
/// or a `Vec` of `&str` or `String`.
pub trait StepNames {
    /// The names, in order.
    fn into_names(self) -> Vec<String>;
}

impl<const N: usize> StepNames for [&str; N] {
    fn into_names(self) -> Vec<String> {
        self.iter().map(|s| (*s).to_owned()).collect()
    }
}

impl StepNames for &[&str] {
    fn into_names(self) -> Vec<String> {
        self.iter().map(|s| (*s).to_owned()).collect()
    }
}

impl StepNames for Vec<&str> {
    fn into_names(self) -> Vec<String> {
        self.into_iter().map(str::to_owned).collect()
    }
}

impl StepNames for Vec<String> {
    fn into_names(self) -> Vec<String> {
        self
    }
}

fn attempts(n: u32) -> String {
    match n {
        1 => "1 attempt".to_owned(),
        n => format!("{n} attempts"),
    }
}

fn outcome(outcome: StepOutcome) -> &'static str {
    match outcome {
        StepOutcome::Completed => "completed",
        StepOutcome::Skipped => "skipped",
        StepOutcome::Failed => "failed",
        StepOutcome::Cancelled => "cancelled",
        StepOutcome::Waiting => "waiting",
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}
