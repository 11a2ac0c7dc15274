//! PostgreSQL faults under real worker processes (PostgreSQL only): three `ownership-worker`
//! processes execute 100 `Soak` runs (`tests/soak.rs`) while
//! - the server restarts twice (`scripts/postgres.sh restart`: an immediate stop,
//!   a crash and recovery on the same port), or
//! - every connection to the test's database is killed (`pg_terminate_backend`) every 100 ms
//!   for 5 s.
//!
//! Checked: every run ends as an uninterrupted run would; the journal holds each fact once
//! (no committed step ran again to be journaled twice); the workers survive (still running at
//! the end, no panic on their stderr, stopped cleanly through the stop file). No process is
//! killed, so a step runs again only when it was in flight as a broken connection stopped its
//! run (a write that failed gave the run back, or the worker fenced itself): those repeated
//! executions are counted and printed, not asserted. Timings are printed, never asserted.
//!
//! A restart breaks every connection to the server, including those of other tests: the tests
//! of this binary take turns, and the restart test only restarts the cluster of
//! `scripts/postgres.sh` when it is the server of `WORKFLOW_TEST_POSTGRES_URL`. Run this
//! binary alone (cargo runs test binaries one after another).

// Shared with tests/ownership.rs, which uses all of it (`on_both_stores!` too).
#[allow(dead_code, unused_imports, unused_macros)]
#[path = "ownership_worker/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "ownership_worker/workflows.rs"]
mod workflows;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{client, postgres_url, Scratch, Worker, LEASE_MS};
use sqlx::Connection;
use workflow_core::prelude::*;
use workflow_core::store::{RunFilter, StoreError};
use workflow_core::JournalEvent;
use workflows::Soak;

const RUNS: u64 = 100;
/// Runs are started in this many batches, a pause apart.
const BATCHES: u64 = 10;
const BATCH_PAUSE: Duration = Duration::from_millis(250);
/// How long each step of `Soak` takes: a run is 7 steps deep, so ~0.5 s.
const STEP_MS: u64 = 70;
/// How long the test waits for every run to end.
const FINISH_LIMIT: Duration = Duration::from_secs(120);

/// The tests of this binary take turns: a restart breaks every connection to the server.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The output an uninterrupted run of `n` gives, approved (as in `tests/soak.rs`).
fn expected_output(n: u64) -> String {
    let (l, r) = (n + 1, n + 2);
    let total: u64 = (0..3).map(|i| (l + r + i) * 10).sum();
    format!("charged {total}")
}

/// A worker process like [`Worker::start`]'s, with its stderr in a file (to look for panics).
fn start_worker(scratch: &Scratch, stderr: &Path) -> Worker {
    let file = std::fs::File::create(stderr).expect("create the worker's stderr file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ownership-worker"))
        .arg(scratch.store_arg())
        .arg(&scratch.log)
        .arg(LEASE_MS.to_string())
        .arg(STEP_MS.to_string())
        .stdout(Stdio::piped())
        .stderr(file)
        .spawn()
        .expect("spawn the ownership worker");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("read the worker's output");
    assert!(
        line.starts_with("ready "),
        "worker said: {line:?}; stderr: {}",
        std::fs::read_to_string(stderr).unwrap_or_default()
    );
    Worker { child, stdout }
}

/// Runs a client command until the store answers (it may be down, or its connection killed);
/// counts the failed attempts.
async fn retried<T, F, Fut>(what: &str, failures: &mut u64, mut command: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        match command().await {
            Ok(value) => return value,
            Err(error) if started.elapsed() < Duration::from_secs(60) => {
                *failures += 1;
                eprintln!("{what} failed (retrying): {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("{what} failed for 60 s: {error}"),
        }
    }
}

/// Starts run `n` and sends its `approval` (every fifth run is rejected). A retried start finds
/// the run it created; a retried signal may be delivered twice, which changes nothing (one is
/// consumed, the other is left).
async fn start_run(engine: &DurableEngine, soak: &Soak, n: u64, failures: &mut u64) -> RunId {
    let id = RunId::from(format!("soak-{n}"));
    retried(&format!("start {id}"), failures, || async {
        engine
            .start_with(soak, n, RunOptions::new().run_id(id.clone()))
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    retried(&format!("signal {id}"), failures, || async {
        let run = engine.handle::<Soak>(id.clone());
        match run
            .signal(Soak::signals().approval, !n.is_multiple_of(5))
            .await
        {
            Ok(())
            | Err(WorkflowError::Store {
                error: StoreError::RunFinished { .. },
                ..
            }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    id
}

/// How many runs are not finished yet (read through the faults).
async fn unfinished(engine: &DurableEngine, failures: &mut u64) -> usize {
    retried("list the runs", failures, || async {
        engine
            .list(&RunFilter::default())
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .runs
    .iter()
    .filter(|run| !run.status.is_finished())
    .count()
}

/// Waits until every run ends; read errors (the server restarting) are waited out. Panics
/// with the state of the first run that does not end within [`FINISH_LIMIT`].
async fn until_all_end(engine: &DurableEngine, ids: &[RunId]) {
    let started = Instant::now();
    for id in ids {
        loop {
            let record = engine.status(id).await;
            if matches!(&record, Ok(r) if r.summary.status.is_finished()) {
                break;
            }
            if started.elapsed() > FINISH_LIMIT {
                let workers = engine.store().list_workers().await;
                panic!(
                    "{id} did not end within {FINISH_LIMIT:?}: {record:?}; workers: {workers:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The checks of `tests/soak.rs`: outcomes, each journal fact once, compensations in reverse
/// completion order. Returns the step executions that were repeated (all executions of a key
/// but the last) and the keys that ran more than once.
async fn check_runs(engine: &DurableEngine, scratch: &Scratch, ids: &[RunId]) -> (usize, usize) {
    for (n, id) in ids.iter().enumerate() {
        let record = engine.status(id).await.unwrap();
        if n % 5 == 0 {
            assert_eq!(record.summary.status, RunStatus::Failed, "{id}");
        } else {
            assert_eq!(
                record.summary.status,
                RunStatus::Completed,
                "{id}: {:?}",
                record.error
            );
            let output: String = serde_json::from_slice(&record.output.unwrap()).unwrap();
            assert_eq!(output, expected_output(n as u64), "{id}");
        }
        let mut seen = HashSet::new();
        let (mut sagas, mut compensated) = (Vec::new(), Vec::new());
        for record in engine.journal(id).await.unwrap() {
            let fact = match record.event {
                JournalEvent::StepCompleted { step, .. } => {
                    if step == "reserve" || step == "charge" {
                        sagas.push(step.clone());
                    }
                    format!("step {step}")
                }
                JournalEvent::ItemCompleted { step, item, .. } => format!("item {step} {item}"),
                JournalEvent::Compensated { step, .. } => {
                    compensated.push(step.clone());
                    format!("compensated {step}")
                }
                other => format!("{other:?}"),
            };
            assert!(seen.insert(fact.clone()), "{id}: {fact} journaled twice");
        }
        if n % 5 == 0 {
            sagas.reverse();
            assert_eq!(compensated, sagas, "{id}: compensation order");
        }
    }
    let effects = scratch.effects();
    let compensations: HashSet<&str> = effects
        .iter()
        .filter(|e| e.event == "compensate")
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(
        compensations.len(),
        2 * ids.len().div_ceil(5),
        "every rejected run compensated both saga steps"
    );
    let mut executions: BTreeMap<&str, usize> = BTreeMap::new();
    for e in effects.iter().filter(|e| e.event == "start") {
        *executions.entry(e.key.as_str()).or_default() += 1;
    }
    let repeated = executions.values().map(|n| n - 1).sum();
    let keys = executions.values().filter(|&&n| n > 1).count();
    (repeated, keys)
}

/// Checks that the workers are still running and have not panicked, stops them through the
/// stop file (which they all watch) and returns their fencing counts (rejected writes,
/// self-fenced runs).
fn stop_workers(scratch: &Scratch, mut workers: Vec<(Worker, PathBuf)>) -> Vec<(u64, u64)> {
    for (worker, stderr) in &mut workers {
        let exited = worker.child.try_wait().expect("poll the worker");
        assert!(
            exited.is_none(),
            "worker {} exited ({exited:?}); stderr: {}",
            worker.pid(),
            std::fs::read_to_string(stderr).unwrap_or_default()
        );
    }
    let mut fencing = Vec::new();
    for (worker, stderr) in workers {
        let pid = worker.pid();
        fencing.push(worker.stop(scratch));
        let said = std::fs::read_to_string(&stderr).unwrap_or_default();
        assert!(!said.contains("panicked"), "worker {pid} panicked: {said}");
        let _ = std::fs::remove_file(&stderr);
    }
    fencing
}

/// Where the workers' stderr goes.
fn stderr_path(scratch: &Scratch, i: usize) -> PathBuf {
    PathBuf::from(format!("{}.stderr{i}", scratch.log.display()))
}

/// `scripts/postgres.sh` of this checkout.
fn postgres_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh")
}

/// True when `scripts/postgres.sh` manages the server of `server` (the test URL), so
/// restarting its cluster restarts the server under test. Otherwise the restart test cannot
/// run: it fails under `WORKFLOW_REQUIRE_POSTGRES=1` (CI), and is skipped elsewhere.
fn script_manages(server: &str) -> bool {
    let output = Command::new("bash")
        .arg(postgres_script())
        .arg("url")
        .output()
        .expect("run scripts/postgres.sh url");
    let managed = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let base = |url: &str| url.rsplit_once('/').map(|(b, _)| b.to_owned());
    if output.status.success() && base(&managed) == base(server) {
        return true;
    }
    let why = format!(
        "scripts/postgres.sh manages {managed:?}, not the test server {server}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    assert!(
        std::env::var("WORKFLOW_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "WORKFLOW_REQUIRE_POSTGRES=1 but the restart test cannot restart the server: {why}"
    );
    eprintln!("restart test not run: {why}");
    false
}

/// `scripts/postgres.sh restart` of the test cluster (a crash and recovery); returns how long it took.
async fn restart_server() -> Duration {
    tokio::task::spawn_blocking(|| {
        let started = Instant::now();
        let output = Command::new("bash")
            .arg(postgres_script())
            .arg("restart")
            .output()
            .expect("run scripts/postgres.sh restart");
        assert!(
            output.status.success(),
            "scripts/postgres.sh restart failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        started.elapsed()
    })
    .await
    .expect("the restart thread")
}

/// The faults of a test.
enum Fault {
    /// Restart the server after these batches of runs were started.
    RestartAfterBatches(&'static [u64]),
    /// Kill every connection to the database every `every` for `during`.
    KillConnections { every: Duration, during: Duration },
}

/// Three workers, [`RUNS`] runs started in batches under `fault`; then every check.
async fn soak_under(scratch: Scratch, fault: Fault, name: &str) {
    let workers: Vec<(Worker, PathBuf)> = (0..3)
        .map(|i| {
            let stderr = stderr_path(&scratch, i);
            (start_worker(&scratch, &stderr), stderr)
        })
        .collect();
    let engine = client(&scratch).await;
    let soak = Soak {
        log: scratch.log.clone(),
        step_ms: STEP_MS,
    };
    let url = scratch.url.clone().expect("a PostgreSQL scratch database");
    let killer = match &fault {
        Fault::KillConnections { every, during } => {
            let (every, during) = (*every, *during);
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .expect("connect the killer");
            Some(tokio::spawn(async move {
                let started = Instant::now();
                let (mut rounds, mut killed) = (0u64, 0u64);
                while started.elapsed() < during {
                    let results: Vec<Option<bool>> = sqlx::query_scalar(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    )
                    .fetch_all(&mut conn)
                    .await
                    .expect("terminate the other connections");
                    rounds += 1;
                    killed += results.iter().filter(|r| **r == Some(true)).count() as u64;
                    tokio::time::sleep(every).await;
                }
                (rounds, killed)
            }))
        }
        Fault::RestartAfterBatches(_) => None,
    };

    let started = Instant::now();
    let mut failures = 0;
    let mut ids = Vec::new();
    let per_batch = RUNS.div_ceil(BATCHES);
    for batch in 0..BATCHES {
        for n in batch * per_batch..((batch + 1) * per_batch).min(RUNS) {
            ids.push(start_run(&engine, &soak, n, &mut failures).await);
        }
        if let Fault::RestartAfterBatches(after) = &fault {
            if after.contains(&(batch + 1)) {
                let in_flight = unfinished(&engine, &mut failures).await;
                assert!(in_flight > 0, "no run in flight to restart under");
                let took = restart_server().await;
                println!(
                    "{name}: restarted the server in {took:?} at {:?}, {in_flight} runs unfinished",
                    started.elapsed()
                );
            }
        }
        tokio::time::sleep(BATCH_PAUSE).await;
    }
    let faults_ended = match killer {
        Some(killer) => {
            let (rounds, killed) = killer.await.expect("the killer task");
            println!(
                "{name}: {rounds} rounds of pg_terminate_backend killed {killed} connections over {:?}",
                started.elapsed()
            );
            started.elapsed()
        }
        None => started.elapsed(),
    };
    until_all_end(&engine, &ids).await;
    let finished = started.elapsed();
    println!(
        "{name}: {} runs ended {finished:?} after the first start ({:?} after the last fault); \
         {failures} client commands retried",
        ids.len(),
        finished.saturating_sub(faults_ended)
    );

    let (repeated, keys) = check_runs(&engine, &scratch, &ids).await;
    println!(
        "{name}: {repeated} step executions repeated (in flight as a fault stopped their run), \
         over {keys} keys"
    );
    let fencing = stop_workers(&scratch, workers);
    println!("{name}: fencing (rejected writes, self-fenced runs) per worker: {fencing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_survive_a_postgres_restart_mid_run() {
    let _turn = TURN.lock().await;
    let Some(server) = postgres_url() else { return };
    if !script_manages(&server) {
        return;
    }
    let scratch = Scratch::postgres("pgrestart")
        .await
        .expect("a PostgreSQL server");
    soak_under(scratch, Fault::RestartAfterBatches(&[3, 7]), "restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_reconnect_when_their_connections_are_killed() {
    let _turn = TURN.lock().await;
    let Some(scratch) = Scratch::postgres("pgkill").await else {
        return;
    };
    let fault = Fault::KillConnections {
        every: Duration::from_millis(100),
        during: Duration::from_secs(5),
    };
    soak_under(scratch, fault, "kill").await;
}
