//! What the multi-process tests share: scratch files, the side-effect log, worker processes
//! (started, killed, paused, stopped) and a client engine of the test process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use workflow_core::prelude::*;
use workflow_core::store::{PostgresStore, SqliteStore};
use workflow_core::WorkerOptions;

/// Lease of the worker processes.
pub const LEASE_MS: u64 = 1000;

/// A store (an SQLite file, or a fresh PostgreSQL database) and a side-effect log in the temp
/// dir; the files are removed on drop.
pub struct Scratch {
    pub db: PathBuf,
    pub log: PathBuf,
    /// The PostgreSQL database of the test, when it runs on PostgreSQL.
    pub url: Option<String>,
}

/// The PostgreSQL server of the tests: `WORKFLOW_TEST_POSTGRES_URL`. Without it the PostgreSQL
/// variants of the tests pass without running, unless `WORKFLOW_REQUIRE_POSTGRES=1` (CI):
/// then they fail.
pub fn postgres_url() -> Option<String> {
    match std::env::var("WORKFLOW_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("WORKFLOW_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "WORKFLOW_REQUIRE_POSTGRES=1 but WORKFLOW_TEST_POSTGRES_URL is not set"
            );
            eprintln!("WORKFLOW_TEST_POSTGRES_URL is not set: PostgreSQL variant not run");
            None
        }
    }
}

impl Scratch {
    /// A scratch store on PostgreSQL: a new database on the test server (`None` without one).
    pub async fn postgres(name: &str) -> Option<Self> {
        use sqlx::Connection;

        let server = postgres_url()?;
        let mut scratch = Scratch::new(name);
        // PostgreSQL cuts names at 63 bytes: keep the unique part (pid, counter) whole.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let short: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(24)
            .collect();
        let database = format!(
            "wf_{short}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, SeqCst)
        );
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("the PostgreSQL test server {server} is unreachable: {e}"));
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        ))
        .execute(&mut admin)
        .await
        .expect("drop a leftover test database");
        sqlx::query(&format!("CREATE DATABASE \"{database}\""))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let (base, _) = server.rsplit_once('/').expect("a database URL");
        scratch.url = Some(format!("{base}/{database}"));
        Some(scratch)
    }

    /// What a worker process is given: the database URL or the file.
    pub fn store_arg(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| self.db.display().to_string())
    }

    pub fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join(format!(
            "workflow-ownership-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, SeqCst)
        ));
        let scratch = Scratch {
            db: base.with_extension("db"),
            log: base.with_extension("log"),
            url: None,
        };
        scratch.remove();
        scratch
    }

    pub fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
        }
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(self.stop_file());
    }

    pub fn stop_file(&self) -> PathBuf {
        PathBuf::from(format!("{}.stop", self.log.display()))
    }

    pub fn effects(&self) -> Vec<Effect> {
        effects(&self.log)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}

/// One line of the side-effect log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    pub pid: u32,
    pub event: String,
    pub key: String,
}

pub fn effects(path: &Path) -> Vec<Effect> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            Some(Effect {
                pid: parts.next()?.parse().ok()?,
                event: parts.next()?.to_owned(),
                key: parts.next()?.to_owned(),
            })
        })
        .collect()
}

/// A worker process, killed on drop if still running.
pub struct Worker {
    pub child: Child,
    pub stdout: BufReader<ChildStdout>,
}

impl Worker {
    /// Starts a worker and waits until it is registered.
    pub fn start(scratch: &Scratch, hold_ms: u64) -> Worker {
        Worker::start_deployed(scratch, hold_ms, "v1")
    }

    /// Starts a worker of deployment `v1` or `v2` (which has `HoldV2` instead of `Hold`).
    pub fn start_deployed(scratch: &Scratch, hold_ms: u64, deploy: &str) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ownership-worker"))
            .env("OWNERSHIP_DEPLOY", deploy)
            .arg(scratch.store_arg())
            .arg(&scratch.log)
            .arg(LEASE_MS.to_string())
            .arg(hold_ms.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the ownership worker");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the worker's output");
        assert!(line.starts_with("ready "), "worker said: {line:?}");
        Worker { child, stdout }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGKILL, and reap the process.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the worker");
        let _ = self.child.wait();
    }

    /// Stops the worker through its stop file; returns its fencing counts.
    pub fn stop(mut self, scratch: &Scratch) -> (u64, u64) {
        std::fs::write(scratch.stop_file(), b"").expect("write the stop file");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read the worker's fencing line");
        let _ = self.child.wait();
        let _ = std::fs::remove_file(scratch.stop_file());
        let numbers: Vec<u64> = line
            .strip_prefix("fencing ")
            .unwrap_or_else(|| panic!("worker said: {line:?}"))
            .split_whitespace()
            .map(|n| n.parse().expect("a count"))
            .collect();
        (numbers[0], numbers[1])
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An engine of the test process that only sends commands: it claims nothing.
pub async fn client(scratch: &Scratch) -> DurableEngine {
    let options = WorkerOptions::default().claim_runs(false);
    match &scratch.url {
        Some(url) => {
            let store = PostgresStore::connect(url)
                .await
                .expect("connect to the store");
            DurableEngine::with_options(store, options)
        }
        None => {
            let store = SqliteStore::open(&scratch.db)
                .await
                .expect("open the store");
            DurableEngine::with_options(store, options)
        }
    }
}

/// Waits until every run of `ids` ends (`completed`: completes), each within `limit`.
pub async fn until_all<'a>(
    engine: &DurableEngine,
    ids: impl IntoIterator<Item = &'a RunId>,
    completed: bool,
    limit: Duration,
) {
    for id in ids {
        let what = if completed { "completes" } else { "ends" };
        until(&format!("{id} {what}"), limit, || async {
            let now = status(engine, id).await;
            if completed {
                now == RunStatus::Completed
            } else {
                now.is_finished()
            }
        })
        .await;
    }
}

/// Polls `check` every 10 ms until it holds; panics after `limit`.
pub async fn until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

pub async fn status(engine: &DurableEngine, id: &RunId) -> RunStatus {
    engine.status(id).await.expect("status").summary.status
}

/// Runs the multi-process test `$test(scratch)` twice: `$test::sqlite` on an SQLite file and
/// `$test::postgres` on a fresh PostgreSQL database (see [`postgres_url`]).
macro_rules! on_both_stores {
    ($test:ident) => {
        mod $test {
            use super::harness::Scratch;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$test(Scratch::new(stringify!($test))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(scratch) = Scratch::postgres(stringify!($test)).await {
                    super::$test(scratch).await;
                }
            }
        }
    };
}
pub(crate) use on_both_stores;
