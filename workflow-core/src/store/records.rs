//! What a store keeps: runs (with their ownership), journal records, and the requests that
//! create or change them.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::journal::JournalEvent;
use crate::run_id::RunId;

/// Where a run stands. The store is the owner of every run: a run is executed only by the
/// worker that holds its claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Ready to be claimed by a worker that has its definition.
    Ready,
    /// Claimed by a worker (see [`RunSummary::owner`]) and executing there.
    Claimed,
    /// Parked: waiting for a signal or a timer (see [`RunSummary::wake_at`]); no worker holds it.
    Waiting,
    /// Finished with an output.
    Completed,
    /// Finished with an error (compensations, if any, ran).
    Failed,
    /// Cancelled (compensations, if any, ran).
    Cancelled,
}

impl RunStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Ready,
        RunStatus::Claimed,
        RunStatus::Waiting,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// The name stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ready => "ready",
            RunStatus::Claimed => "claimed",
            RunStatus::Waiting => "waiting",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored status name.
    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// True once the run can no longer change.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one worker process for as long as it lives: new at every start, never reused.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(Arc<str>);

impl WorkerId {
    /// A fresh id: `host/pid/random/locality`, where the locality (on Linux: the boot id
    /// and the pid namespace) tells whether another worker's pid can be checked from here.
    pub fn generate() -> Self {
        let host = read_trimmed("/proc/sys/kernel/hostname")
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "host".into())
            .replace('/', "_");
        let random = RunId::generate();
        let locality = locality().unwrap_or_default();
        WorkerId(format!("{host}/{}/{random}/{locality}", std::process::id()).into())
    }

    /// The process id of a worker of the same machine and pid namespace as this process
    /// (`None` for another machine, or where that cannot be known).
    pub fn local_pid(&self) -> Option<u32> {
        let mut parts = self.0.rsplitn(4, '/');
        let theirs = parts.next()?;
        let _random = parts.next()?;
        let pid = parts.next()?.parse().ok()?;
        let ours = locality()?;
        (theirs == ours).then_some(pid)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// This process's machine boot and pid namespace, on Linux.
fn locality() -> Option<String> {
    let boot = read_trimmed("/proc/sys/kernel/random/boot_id")?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let namespace = namespace.to_string_lossy();
    let digits: String = namespace.chars().filter(char::is_ascii_digit).collect();
    Some(format!("{boot}.{digits}"))
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl From<&str> for WorkerId {
    fn from(id: &str) -> Self {
        WorkerId(id.into())
    }
}

impl From<String> for WorkerId {
    fn from(id: String) -> Self {
        WorkerId(id.into())
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkerId({})", self.0)
    }
}

/// A worker's right to execute one run: every write of the run carries it, and the store
/// rejects it with [`super::StoreError::LeaseLost`] once the run's epoch moved on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The run.
    pub run_id: RunId,
    /// The worker holding it.
    pub worker: WorkerId,
    /// The fencing epoch: bumped at every change of ownership.
    pub epoch: u64,
}

/// A run a worker just claimed, with everything it needs to resume it.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    /// The claim to write with.
    pub claim: Claim,
    /// The run as stored at the claim.
    pub run: RunRecord,
}

/// A workflow definition a worker can execute: claims only return runs of these.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DefinitionKey {
    /// Workflow name.
    pub workflow: String,
    /// Definition hash.
    pub hash: u64,
}

/// A worker announcing itself.
#[derive(Debug, Clone)]
pub struct WorkerRegistration {
    /// Its id.
    pub worker: WorkerId,
    /// How long its claims last without a heartbeat.
    pub lease: Duration,
}

/// What a worker asks for when it claims.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// Only runs of these definitions.
    pub definitions: Vec<DefinitionKey>,
    /// At most this many runs.
    pub limit: u32,
}

/// Limits of a named queue, enforced across all workers.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// The queue's name.
    pub queue: String,
    /// At most this many runs of the queue are claimed at once (parked runs do not count).
    pub concurrency: Option<u32>,
    /// At most this many claims per second on average...
    pub rate_per_sec: Option<f64>,
    /// ...with bursts of up to this many.
    pub burst: u32,
}

/// A queue as operators see it ([`super::queue_states`]): its limits, if it has any, and how
/// many runs wait on it for a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueState {
    /// The queue's name.
    pub queue: String,
    /// Its limits ([`super::Store::set_queue`]); `None` for a queue without any.
    pub limits: Option<QueueConfig>,
    /// Its ready runs ([`super::Store::queue_depths`]).
    pub ready: u64,
}

/// Why a run is parked and when it must wake up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Park {
    /// When the run becomes claimable again without a signal (`None`: only a signal or a
    /// cancel wakes it).
    pub wake_at: Option<SystemTime>,
    /// The signals it waits for (comma-separated names), for listings.
    pub waiting_for: Option<String>,
    /// The run's [`RunSummary::signal_seq`] the worker last saw: if a signal or a cancel
    /// arrived since, the run is not parked.
    pub seen_signal_seq: u64,
}

/// The answer to [`super::Store::park`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parked {
    /// The claim is released; the run waits in the store.
    Parked,
    /// A signal or cancel arrived since the worker looked: it keeps the claim and goes on,
    /// having now seen this `signal_seq`.
    Woken {
        /// The run's current signal sequence.
        signal_seq: u64,
    },
}

/// How a run ended, for [`super::Store::finish`].
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// `Completed`, `Failed` or `Cancelled`.
    pub status: RunStatus,
    /// The encoded output of a completed run.
    pub output: Option<Vec<u8>>,
    /// The error of a failed or cancelled run.
    pub error: Option<String>,
}

/// A run as listed: everything but its payloads.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run.
    pub run_id: RunId,
    /// Workflow name.
    pub workflow: String,
    /// Workflow version the run started with.
    pub version: u32,
    /// Definition hash the run started with.
    pub definition_hash: u64,
    /// The queue it was started on.
    pub queue: String,
    /// Where it stands.
    pub status: RunStatus,
    /// The worker holding its claim (status `Claimed`).
    pub owner: Option<WorkerId>,
    /// The fencing epoch.
    pub epoch: u64,
    /// When a parked run becomes claimable again (`None` with status `Waiting`: on a signal).
    pub wake_at: Option<SystemTime>,
    /// The signals a parked run waits for.
    pub waiting_for: Option<String>,
    /// Bumped by every signal and cancel sent to the run.
    pub signal_seq: u64,
    /// A cancel was requested; the owner (or the next one) stops the run and compensates.
    pub cancel_requested: bool,
    /// The run must finish by then (stored with the run: a restart does not restart the clock).
    pub deadline_at: Option<SystemTime>,
    /// Times the run was claimed.
    pub claims: u32,
    /// Journal records the run had when it last left a worker (released, parked or taken
    /// over): a journal read back shorter than this lost records, and is reported.
    pub journal_len: u64,
    /// Creation order (the cursor of paged listings).
    pub created_seq: u64,
    /// When it was created (`None` for runs stored before schema version 4).
    pub created_at: Option<SystemTime>,
    /// When it finished (`None` while it is live).
    pub finished_at: Option<SystemTime>,
    /// The trace context its drives continue (see [`NewRun::trace_context`]).
    pub trace_context: Option<String>,
}

/// A run as stored, with its payloads.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Everything but the payloads.
    pub summary: RunSummary,
    /// The encoded input.
    pub input: Vec<u8>,
    /// The encoded output, once completed.
    pub output: Option<Vec<u8>>,
    /// The error, once failed or cancelled.
    pub error: Option<String>,
}

/// A new run to store.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The run's id (caller-chosen or generated): an idempotency key.
    pub run_id: RunId,
    /// Workflow name.
    pub workflow: String,
    /// Workflow version.
    pub version: u32,
    /// Definition hash.
    pub definition_hash: u64,
    /// The queue (`"default"` unless chosen).
    pub queue: String,
    /// The run's deadline, if any.
    pub deadline_at: Option<SystemTime>,
    /// Encoded input.
    pub input: Vec<u8>,
    /// The OpenTelemetry trace context (W3C `traceparent`) every drive of the run continues
    /// (feature `otel`; `None` otherwise).
    pub trace_context: Option<String>,
}

/// Which runs [`super::Store::list`] returns: a page, oldest first.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs on this queue.
    pub queue: Option<String>,
    /// Only runs claimed by this worker.
    pub owner: Option<WorkerId>,
    /// Only runs created after this cursor ([`RunPage::next`] of the previous page).
    pub after: Option<u64>,
    /// Only runs created at or after this time.
    pub created_since: Option<SystemTime>,
    /// Only runs created before this time.
    pub created_before: Option<SystemTime>,
    /// At most this many runs (0: a default of 1,000).
    pub limit: u32,
}

/// One page of [`super::Store::list`].
#[derive(Debug, Clone)]
pub struct RunPage {
    /// The runs, oldest first.
    pub runs: Vec<RunSummary>,
    /// The cursor of the next page, when there may be more.
    pub next: Option<u64>,
    /// Rows of this page that cannot be read ([`super::StoreError::Corrupt`], naming the run
    /// where its id is readable): reported, never a reason to fail the whole listing.
    pub unreadable: Vec<super::StoreError>,
}

/// One journal record of a run. `seq` orders the records of a run from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRecord {
    /// Position in the run's journal.
    pub seq: u64,
    /// What it says.
    pub event: JournalEvent,
}

/// One operator action, as the store keeps it ([`super::Store::record_audit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When.
    pub at: SystemTime,
    /// Who (as the tool that acted knows them).
    pub who: String,
    /// What: `cancel`, `signal`, `retry`, ...
    pub action: String,
    /// The run it was about, if any.
    pub run_id: Option<RunId>,
    /// The rest: the signal and its payload, the step retried from.
    pub detail: String,
}

/// When each record of a run's journal was committed, by `seq` (`None` for records stored
/// before schema version 4): [`super::Store::journal_times`].
pub type CommitTimes = Vec<(u64, Option<SystemTime>)>;

/// A journal as it stands after its [`JournalEvent::Rewound`] records: each one drops the
/// records before it about its steps (outputs, waits, signals, retries, compensations) and the
/// run's earlier stops, and goes itself. What a resumed run replays, and what its history
/// shows; the raw journal keeps everything.
pub fn effective_journal(records: Vec<JournalRecord>) -> Vec<JournalRecord> {
    let mut kept: Vec<JournalRecord> = Vec::with_capacity(records.len());
    for record in records {
        match &record.event {
            JournalEvent::Rewound { steps } => kept.retain(|earlier| match &earlier.event {
                JournalEvent::Stopped { .. } => false,
                event => !event.step().is_some_and(|s| steps.iter().any(|r| r == s)),
            }),
            _ => kept.push(record),
        }
    }
    kept
}

/// A workflow definition as the store keeps it (see [`super::Store::put_definition`]), so that
/// a run refused under another definition can say what changed, and tools can show graphs
/// without the workflow's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDefinition {
    /// Workflow name.
    pub workflow: String,
    /// Its version.
    pub version: u32,
    /// Its hash ([`crate::Definition::hash`]).
    pub hash: u64,
    /// Its canonical text ([`crate::Definition::canonical`]).
    pub canonical: String,
    /// The JSON Schema (as JSON text) of each signal's payload, by signal name, for the payload
    /// types that derive `schemars::JsonSchema`: tools validate a signal against it without
    /// the workflow's code.
    pub signal_schemas: std::collections::BTreeMap<String, String>,
}

impl StoredDefinition {
    /// Its steps, read back from the canonical text, in order.
    pub fn steps(&self) -> Vec<crate::CanonicalStep> {
        crate::canonical_text::parse(&self.canonical).1
    }
}

/// A `wf_definitions` row (workflow, hash, version, canonical, signal schemas) as read by both
/// stores.
pub(crate) fn stored_definition(row: DefinitionRow) -> StoredDefinition {
    let (workflow, hash, version, canonical, schemas) = row;
    StoredDefinition {
        workflow,
        version: version as u32,
        hash: hash as u64,
        canonical,
        // Unreadable schemas are as none: the signal is then checked by the worker only.
        signal_schemas: schemas
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default(),
    }
}

/// A `wf_audit` row (at, who, action, run_id, detail) as read by both stores.
pub(crate) fn audit_record(row: (i64, String, String, Option<String>, String)) -> AuditRecord {
    let (at, who, action, run_id, detail) = row;
    AuditRecord {
        at: super::writer::from_ms(at),
        who,
        action,
        run_id: run_id.map(RunId::from),
        detail,
    }
}

/// The columns `stored_definition` reads.
pub(crate) type DefinitionRow = (String, i64, i64, String, Option<String>);

/// The signal schemas of a definition as stored (a JSON object; `None` when there are none).
pub(crate) fn schemas_column(definition: &StoredDefinition) -> Option<String> {
    (!definition.signal_schemas.is_empty())
        .then(|| serde_json::to_string(&definition.signal_schemas).unwrap_or_default())
}

/// `(queue, count)` rows of ready runs as read by both stores.
pub(crate) fn queue_depths(rows: Vec<(String, i64)>) -> Vec<(String, u64)> {
    rows.into_iter()
        .map(|(queue, count)| (queue, count.max(0) as u64))
        .collect()
}

/// A `wf_queues` row (queue, concurrency, rate_per_sec, burst) as read by both stores.
pub(crate) fn queue_config(row: (String, Option<i64>, Option<f64>, i64)) -> QueueConfig {
    let (queue, concurrency, rate_per_sec, burst) = row;
    QueueConfig {
        queue,
        concurrency: concurrency.map(|c| c as u32),
        rate_per_sec,
        burst: burst as u32,
    }
}
