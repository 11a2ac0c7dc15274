//! Workers on PostgreSQL: durable throughput with 1, 2 and 4 worker processes, end-to-end
//! latency, and takeover after a worker is killed or paused; every figure beside a ceiling
//! measured in the same run (pgbench running the store's own step-commit statement on the same
//! server). Prints a table; no timing assertions.
//!
//! ```sh
//! eval "$(bash scripts/postgres.sh start | tail -n 1)"   # WORKFLOW_TEST_POSTGRES_URL
//! cargo bench -p workflow-core --features postgres --bench distributed
//! ```
//!
//! The bench reads `WORKFLOW_BENCH_POSTGRES_URL` (else `WORKFLOW_TEST_POSTGRES_URL`) and creates
//! fresh databases on that server (`distbench_<pid>_<n>`), dropped at the end. Without a URL it
//! prints how to get one and stops. Under `cargo test --benches` (no `--bench` argument) it
//! does nothing unless `DIST_SECTIONS` is set.
//!
//! Every worker is a separate process: this binary again, started with `DIST_ROLE` set (see
//! [`child_main`]), each with its own `PostgresStore` (one writer connection, group commit)
//! and its own `DurableEngine`. The measuring process only creates runs (a client engine,
//! `claim_runs(false)`) and reads the tables.
//!
//! Sections (pick with `DIST_SECTIONS`, default `pgbench,throughput,latency,takeover`):
//! 1. **pgbench ceiling.** `bench/pg/step1.sql` (the store's fenced step-commit statement, one
//!    transaction each) and `bench/pg/step10.sql` (10 of them for 10 runs in one transaction, as
//!    the store's writer batches them), on the store's own schema filled by
//!    `bench/pg/setup.sql`; `pgbench -n -M prepared -T DIST_PGBENCH_SECS (10) -c C -j min(C,2)`
//!    for C in `DIST_PGBENCH_CLIENTS` (default 1,2,4). Also `bench/pg/step10set.sql`, a what-if
//!    (the same 10 records fenced and inserted by one statement), for C in
//!    `DIST_PGBENCH_SET_CLIENTS` (default 1). Each run starts from `setup.sql` (100,000 claimed
//!    runs, empty journal) and checks that every transaction wrote its records. At the end,
//!    `step1` and `step10` with 1 client run again for `DIST_RECHECK_SECS` (5; 0: not): the
//!    disk of a shared machine changes speed, and a ceiling off by more than 30 % is flagged.
//! 2. **Throughput** of a 5-step no-op workflow with W workers, W in `DIST_WORKERS` (1,2,4):
//!    - *batched*: `DIST_BATCHED_RUNS` (20,000) runs created first, then W workers (default
//!      `max_runs` 1,000) released at once; rate of completions between 10 % and 90 % of them
//!      (the steady state), read from `wf_runs` every 25 ms;
//!    - *unbatched, one run per worker* (`run` loop): each worker process calls
//!      `engine.run(&Five, i)` in a loop for `DIST_UNBATCHED_SECS` (5): one run in flight per
//!      worker, so each of its 8 writes (create, claim, 5 steps, finish) is its own commit;
//!    - *unbatched, claim loop* (`max_runs(1)`): like batched, each worker executing at most one
//!      run at a time, for `DIST_CLAIM1_SECS` (4).
//! 3. **Latency** of a 3-step no-op workflow, unloaded, one worker, `DIST_LATENCY_SAMPLES`
//!    (200) runs one after another: start -> result by `wait`, with the client in the worker's
//!    process; and with the client in another process, the result seen by polling the run's
//!    status every 1 ms, and by `wait` (`DIST_WAIT_SAMPLES`, 40).
//! 4. **Takeover.** `DIST_PAIRS` (5) independent pairs, each in its own database: a victim
//!    worker holding `DIST_VICTIM_RUNS` (4) runs (their step sleeps for an hour in the victim),
//!    and a rescuer worker started after that (its heartbeat clock a random 0-1 s ahead of its
//!    claim-poll clock) and idle for 1.6-2.6 s (its claim poll backed off to 1 s, in a random
//!    phase); then the victim is SIGKILLed (`DIST_ROUNDS` rounds, 4: 20 kills), or SIGSTOPped
//!    (as many): from the signal to its runs released (`ready`) and to all of them claimed by
//!    the rescuer, polled every 5 ms. Lease `DIST_LEASE_MS` (2,000). A killed process of this
//!    machine is detected by its pid at the rescuer's next heartbeat; a stopped one is alive
//!    and silent, so it is reaped when its lease expires, as a worker on another machine
//!    would be.
//!
//! Ratios: batched throughput to `step10` records/s, unbatched throughput to `step1` commits/s,
//! both with as many pgbench clients as workers (each worker writes through one connection);
//! latency to 6 `step1` commits of one client (create, claim, 3 steps, finish); takeover to the
//! lease.
//!
//! CPU: user + system time of the worker processes from `/proc/<pid>/stat` (100 ticks/s), and
//! the machine's busy share of all cores from `/proc/stat` (anything else running on the
//! machine counts too).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Connection;
use workflow_core::prelude::*;
use workflow_core::store::PostgresStore;
use workflow_core::WorkerOptions;

// ---------------------------------------------------------------------------------------------
// The workflows
// ---------------------------------------------------------------------------------------------

/// Step bodies run in this process.
static STEPS: AtomicU64 = AtomicU64::new(0);
/// In a victim process, `Hold::hold` never returns (the process is killed or paused in it).
static HOLDING: AtomicBool = AtomicBool::new(false);

fn step(x: u64) -> u64 {
    STEPS.fetch_add(1, Relaxed);
    x + 1
}

/// Five no-op steps in a chain.
#[derive(Clone)]
struct Five;

#[workflow]
impl Five {
    #[step]
    async fn s0(&self, x: u64) -> u64 {
        step(x)
    }
    #[step(after = s0)]
    async fn s1(&self, x: u64) -> u64 {
        step(x)
    }
    #[step(after = s1)]
    async fn s2(&self, x: u64) -> u64 {
        step(x)
    }
    #[step(after = s2)]
    async fn s3(&self, x: u64) -> u64 {
        step(x)
    }
    #[step(after = s3)]
    async fn s4(&self, x: u64) -> u64 {
        step(x)
    }
}

/// Three no-op steps in a chain.
#[derive(Clone)]
struct Three;

#[workflow]
impl Three {
    #[step]
    async fn t0(&self, x: u64) -> u64 {
        step(x)
    }
    #[step(after = t0)]
    async fn t1(&self, x: u64) -> u64 {
        step(x)
    }
    #[step(after = t1)]
    async fn t2(&self, x: u64) -> u64 {
        step(x)
    }
}

/// One step, which a victim process never finishes.
#[derive(Clone)]
struct Hold;

#[workflow]
impl Hold {
    #[step]
    async fn hold(&self, x: u64) -> u64 {
        if HOLDING.load(Relaxed) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        step(x)
    }
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

struct Config {
    sections: String,
    pgbench_secs: u64,
    pgbench_clients: Vec<usize>,
    pgbench_set_clients: Vec<usize>,
    recheck_secs: u64,
    workers: Vec<usize>,
    batched_runs: u64,
    max_runs: usize,
    unbatched_secs: f64,
    claim1_secs: f64,
    latency_samples: usize,
    wait_samples: usize,
    pairs: usize,
    rounds: usize,
    victim_runs: usize,
    lease_ms: u64,
}

impl Config {
    fn from_env() -> Self {
        Config {
            sections: env(
                "DIST_SECTIONS",
                "pgbench,throughput,latency,takeover".to_owned(),
            ),
            pgbench_secs: env("DIST_PGBENCH_SECS", 10),
            pgbench_clients: env_list("DIST_PGBENCH_CLIENTS", "1,2,4"),
            pgbench_set_clients: env_list("DIST_PGBENCH_SET_CLIENTS", "1"),
            recheck_secs: env("DIST_RECHECK_SECS", 5),
            workers: env_list("DIST_WORKERS", "1,2,4"),
            batched_runs: env("DIST_BATCHED_RUNS", 20_000),
            max_runs: env("DIST_MAX_RUNS", 1000),
            unbatched_secs: env("DIST_UNBATCHED_SECS", 5.0),
            claim1_secs: env("DIST_CLAIM1_SECS", 4.0),
            latency_samples: env("DIST_LATENCY_SAMPLES", 200),
            wait_samples: env("DIST_WAIT_SAMPLES", 40),
            pairs: env("DIST_PAIRS", 5),
            rounds: env("DIST_ROUNDS", 4),
            victim_runs: env("DIST_VICTIM_RUNS", 4),
            lease_ms: env("DIST_LEASE_MS", 2000),
        }
    }

    fn runs(&self, section: &str) -> bool {
        self.sections.split(',').any(|s| s.trim() == section)
    }
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    fn section(&mut self, title: &str) {
        self.rows.push([
            format!("**{title}**"),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }

    fn row(&mut self, measure: &str, value: String, ceiling: String, ratio: String, note: &str) {
        self.rows
            .push([measure.to_owned(), value, ceiling, ratio, note.to_owned()]);
    }

    fn print(&self) {
        let head = ["measure", "value", "ceiling (same run)", "ratio", "notes"];
        let mut widths = head.map(str::len);
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            println!("| {} |", padded.join(" | "));
        };
        println!();
        line(&head.map(str::to_owned));
        println!(
            "|{}|",
            widths
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("|")
        );
        for row in &self.rows {
            line(row);
        }
    }
}

fn ratio(value: f64, ceiling: f64) -> String {
    if ceiling > 0.0 && value.is_finite() {
        format!("{:.0} %", 100.0 * value / ceiling)
    } else {
        "-".to_owned()
    }
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// Nearest-rank percentile.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A reproducible pseudo-random number in [0, 1) (splitmix64).
fn random_fraction(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as f64 / u64::MAX as f64
}

// ---------------------------------------------------------------------------------------------
// CPU accounting
// ---------------------------------------------------------------------------------------------

/// User + system CPU ticks (1/100 s) of a process.
fn process_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    field(11).unwrap_or(0) + field(12).unwrap_or(0)
}

/// (busy, total) ticks of all cores, from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(cpu) = stat.lines().next() else {
        return (0, 0);
    };
    let values: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

// ---------------------------------------------------------------------------------------------
// Databases
// ---------------------------------------------------------------------------------------------

/// The server and the databases this run made on it.
struct Server {
    url: String,
    made: Vec<String>,
}

impl Server {
    fn from_env() -> Option<Server> {
        ["WORKFLOW_BENCH_POSTGRES_URL", "WORKFLOW_TEST_POSTGRES_URL"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|u| !u.is_empty()))
            .map(|url| Server {
                url,
                made: Vec::new(),
            })
    }

    /// The URL of database `name` on the server (the query string, if any, kept).
    fn url_of(&self, name: &str) -> String {
        let (base, query) = match self.url.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (self.url.as_str(), String::new()),
        };
        let (server, _) = base
            .rsplit_once('/')
            .expect("a postgres:// URL with a database");
        format!("{server}/{name}{query}")
    }

    async fn admin(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the PostgreSQL server {}: {e}", self.url))
    }

    /// A new, empty database; its URL.
    async fn fresh(&mut self, what: &str) -> String {
        let name = format!(
            "distbench_{}_{}_{what}",
            std::process::id(),
            self.made.len()
        );
        let mut admin = self.admin().await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .expect("drop a leftover database");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create a database");
        self.made.push(name.clone());
        self.url_of(&name)
    }

    async fn drop_all(&mut self) {
        let mut admin = self.admin().await;
        for name in self.made.drain(..) {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await;
        }
    }
}

async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .expect("connect the observer pool")
}

async fn client(url: &str) -> DurableEngine {
    let store = PostgresStore::connect(url).await.expect("open the store");
    DurableEngine::with_options(store, WorkerOptions::default().claim_runs(false))
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count")
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/// A child process (this binary with `DIST_ROLE`), talking by lines on stdin/stdout.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    fn spawn(role: &str, url: &str, vars: &[(&str, String)]) -> Proc {
        let mut command = Command::new(std::env::current_exe().expect("current exe"));
        command
            .env("DIST_ROLE", role)
            .env("DIST_URL", url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in vars {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn a worker process");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Proc {
            child,
            stdin,
            stdout,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line starting with `prefix` (the rest of it); panics if the child ends first.
    fn expect(&mut self, prefix: &str) -> String {
        tokio::task::block_in_place(|| loop {
            let mut line = String::new();
            let n = self
                .stdout
                .read_line(&mut line)
                .expect("read a child's output");
            assert!(n > 0, "a worker process ended before saying `{prefix}`");
            if let Some(rest) = line.trim_end().strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        })
    }

    fn send(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }

    /// Closes stdin (the child's cue to report and exit) and returns its last report.
    fn finish(mut self, prefix: &str) -> String {
        self.stdin = None;
        let report = self.expect(prefix);
        let _ = self.child.wait();
        report
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn child_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Reads stdin lines on a thread: `go` lines and the end of input.
fn stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (send, receive) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A worker process. Env:
/// - `DIST_ROLE=worker`: a `DurableEngine` over `DIST_URL` with lease `DIST_LEASE_MS` and
///   `max_runs` `DIST_MAX_RUNS`. Says `ready <worker id>`; with `DIST_GATE=1` waits for a `go`
///   line; registers `DIST_WORKFLOW` (`five`, `three` or `hold`); with `DIST_HOLD=1` the hold
///   step never returns here, and with `DIST_START=n` the worker starts runs `DIST_PREFIX-0..n`
///   of `Hold` itself. With `DIST_DELAY_MS=d` it registers `Five` first and the workflow d ms
///   later (the heartbeat loop then runs d ms ahead of the claim loop). Says `go`. On the end of stdin it says `steps <step bodies run>` and
///   exits (without leaving the store: it is dropped with its database).
/// - `DIST_ROLE=runner`: says `ready`, waits for `go`, then runs `Five` with `engine.run`, one
///   after another, for `DIST_SECS`; says `done <runs> <seconds>`.
fn child_main(role: &str) {
    let url = std::env::var("DIST_URL").expect("DIST_URL");
    let lease = Duration::from_millis(env("DIST_LEASE_MS", 10_000));
    let max_runs: usize = env("DIST_MAX_RUNS", 1000);
    HOLDING.store(env("DIST_HOLD", 0u8) == 1, Relaxed);
    child_runtime().block_on(async move {
        let mut lines = stdin_lines();
        let store = PostgresStore::connect(&url).await.expect("open the store");
        let options = WorkerOptions::default().lease(lease).max_runs(max_runs);
        let engine = DurableEngine::with_options(store, options);
        say(&format!("ready {}", engine.worker_id()));
        match role {
            "runner" => {
                let _ = lines.recv().await;
                let secs: f64 = env("DIST_SECS", 5.0);
                let started = Instant::now();
                let mut runs = 0u64;
                while started.elapsed().as_secs_f64() < secs {
                    engine.run(&Five, runs).await.expect("a run");
                    runs += 1;
                }
                say(&format!("done {runs} {}", started.elapsed().as_secs_f64()));
            }
            _ => {
                if env("DIST_GATE", 0u8) == 1 {
                    let _ = lines.recv().await;
                }
                let delay: u64 = env("DIST_DELAY_MS", 0);
                if delay > 0 {
                    // Start the worker's loops now and its claim loop's poll clock later (the
                    // second `register` rings it), so their phases are independent.
                    engine.register(&Five).await.expect("register");
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                match env("DIST_WORKFLOW", "five".to_owned()).as_str() {
                    "three" => engine.register(&Three).await,
                    "hold" => engine.register(&Hold).await,
                    _ => engine.register(&Five).await,
                }
                .expect("register the workflow");
                let prefix: String = env("DIST_PREFIX", "hold".to_owned());
                for i in 0..env("DIST_START", 0u64) {
                    let id = RunId::from(format!("{prefix}-{i}"));
                    engine
                        .start_with(&Hold, i, RunOptions::default().run_id(id))
                        .await
                        .expect("start a run");
                }
                say("go");
                while lines.recv().await.is_some() {}
                say(&format!("steps {}", STEPS.load(Relaxed)));
            }
        }
        std::process::exit(0);
    });
}

// ---------------------------------------------------------------------------------------------
// 1. pgbench ceiling
// ---------------------------------------------------------------------------------------------

/// What pgbench measured: transactions per second and mean latency, by script and clients.
#[derive(Default)]
struct Ceiling {
    tps: HashMap<(&'static str, usize), f64>,
    latency_ms: HashMap<(&'static str, usize), f64>,
}

impl Ceiling {
    /// Single-step commits per second with `clients` clients (the nearest measured count).
    fn step1(&self, clients: usize) -> Option<(usize, f64)> {
        self.nearest("step1", clients)
    }

    /// Records per second of the 10-record group commit.
    fn step10_records(&self, clients: usize) -> Option<(usize, f64)> {
        self.nearest("step10", clients)
            .map(|(c, tps)| (c, tps * 10.0))
    }

    fn nearest(&self, script: &'static str, clients: usize) -> Option<(usize, f64)> {
        self.tps
            .iter()
            .filter(|((s, _), _)| *s == script)
            .min_by_key(|((_, c), _)| c.abs_diff(clients))
            .map(|((_, c), tps)| (*c, *tps))
    }
}

fn pgbench_binary() -> Option<String> {
    if let Ok(path) = std::env::var("DIST_PGBENCH") {
        return Some(path);
    }
    let debian = "/usr/lib/postgresql/15/bin/pgbench";
    if std::path::Path::new(debian).exists() {
        return Some(debian.to_owned());
    }
    Command::new("pgbench")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "pgbench".to_owned())
}

fn script(name: &str) -> String {
    format!("{}/../bench/pg/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// pgbench over the store's schema in a database of its own.
struct PgBench {
    binary: String,
    url: String,
    conn: sqlx::PgConnection,
    setup: String,
}

/// What one pgbench run measured.
struct Measured {
    tps: f64,
    latency_ms: f64,
    /// Journal records the run wrote, and how many its tps promised.
    inserted: i64,
    expected: f64,
}

impl PgBench {
    async fn open(server: &mut Server) -> Option<PgBench> {
        let binary = pgbench_binary()?;
        let url = server.fresh("pgbench").await;
        drop(
            PostgresStore::connect(&url)
                .await
                .expect("create the store's tables"),
        );
        let setup = std::fs::read_to_string(script("setup.sql")).expect("read bench/pg/setup.sql");
        let conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        Some(PgBench {
            binary,
            url,
            conn,
            setup,
        })
    }

    /// Runs `bench/pg/<name>.sql` with `clients` clients for `secs`, from a fresh setup.
    async fn run(&mut self, name: &str, clients: usize, secs: u64) -> Result<Measured, String> {
        // One statement at a time: VACUUM refuses the implicit transaction of a multi-statement
        // query.
        for statement in self.setup.split(";\n").filter(|s| !sql_is_empty(s)) {
            sqlx::raw_sql(statement)
                .execute(&mut self.conn)
                .await
                .expect("run bench/pg/setup.sql");
        }
        eprintln!("pgbench {name} -c {clients} -T {secs}");
        let output = Command::new(&self.binary)
            .args(["-n", "-M", "prepared", "-T"])
            .arg(secs.to_string())
            .arg("-c")
            .arg(clients.to_string())
            .arg("-j")
            .arg(clients.min(2).to_string())
            .args(["-D", "runs=100000", "-f"])
            .arg(script(&format!("{name}.sql")))
            .arg(&self.url)
            .output()
            .expect("run pgbench");
        let text = String::from_utf8_lossy(&output.stdout);
        let find = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        let (Some(tps), Some(latency_ms)) = (find("tps = "), find("latency average = ")) else {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        };
        let inserted = count_journal(&mut self.conn).await;
        let per_tx = if name == "step1" { 1.0 } else { 10.0 };
        Ok(Measured {
            tps,
            latency_ms,
            inserted,
            expected: tps * per_tx * secs as f64,
        })
    }
}

fn pgbench_value(name: &str, tps: f64) -> String {
    if name == "step1" {
        format!("{tps:.0} commits/s")
    } else {
        format!("{:.0} records/s ({tps:.0} tx/s)", tps * 10.0)
    }
}

async fn pgbench(bench: Option<&mut PgBench>, cfg: &Config, table: &mut Table) -> Ceiling {
    let mut ceiling = Ceiling::default();
    table.section(&format!(
        "1. ceiling: pgbench -n -M prepared -T {} on the store's schema (bench/pg/)",
        cfg.pgbench_secs
    ));
    let Some(bench) = bench else {
        table.row(
            "pgbench",
            "not found".into(),
            String::new(),
            String::new(),
            "install postgresql-15 or set DIST_PGBENCH",
        );
        return ceiling;
    };
    let scripts: [(&'static str, &str, &[usize]); 3] = [
        (
            "step1",
            "fenced step commit, 1 per tx",
            &cfg.pgbench_clients,
        ),
        (
            "step10",
            "group commit, 10 statements per tx",
            &cfg.pgbench_clients,
        ),
        (
            "step10set",
            "what-if: the 10 records in 1 statement",
            &cfg.pgbench_set_clients,
        ),
    ];
    for (name, what, clients_list) in scripts {
        for &clients in clients_list {
            let m = match bench.run(name, clients, cfg.pgbench_secs).await {
                Ok(m) => m,
                Err(error) => {
                    let row = format!("{name}.sql, {clients} client(s)");
                    table.row(&row, "FAILED".into(), String::new(), String::new(), &error);
                    continue;
                }
            };
            // Every transaction must have written its records (a fence matching no run would
            // fsync nothing and report a bogus rate).
            let note = format!(
                "{what}; {:.3} ms/tx; {} records written ({:.0} % of tps x T)",
                m.latency_ms,
                m.inserted,
                100.0 * m.inserted as f64 / m.expected
            );
            table.row(
                &format!("{name}.sql, {clients} client(s)"),
                pgbench_value(name, m.tps),
                String::new(),
                "100 %".into(),
                &note,
            );
            ceiling.tps.insert((name, clients), m.tps);
            ceiling.latency_ms.insert((name, clients), m.latency_ms);
        }
    }
    ceiling
}

/// The ceiling measured again at the end: if the disk's speed changed during the run (another
/// job's I/O, the host), the ratios above compare with a ceiling that no longer held.
async fn recheck(bench: &mut PgBench, cfg: &Config, ceiling: &Ceiling, table: &mut Table) {
    table.section(&format!(
        "5. ceiling re-checked at the end (pgbench -T {}, 1 client)",
        cfg.recheck_secs
    ));
    for name in ["step1", "step10"] {
        let Some(&before) = ceiling.tps.get(&(name, 1)) else {
            continue;
        };
        match bench.run(name, 1, cfg.recheck_secs).await {
            Ok(m) => {
                let drift = m.tps / before;
                let note = if (0.7..=1.0 / 0.7).contains(&drift) {
                    "within 30 % of the start: the ratios above hold"
                } else {
                    "MORE than 30 % off the start: the disk changed speed during the run, the ratios above are unreliable"
                };
                table.row(
                    &format!("{name}.sql, 1 client, at the end"),
                    pgbench_value(name, m.tps),
                    pgbench_value(name, before),
                    ratio(m.tps, before),
                    note,
                );
            }
            Err(error) => {
                let row = format!("{name}.sql, 1 client, at the end");
                table.row(&row, "FAILED".into(), String::new(), String::new(), &error);
            }
        }
    }
}

/// True for text with nothing but `--` comments and blanks.
fn sql_is_empty(sql: &str) -> bool {
    sql.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with("--"))
}

async fn count_journal(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM wf_journal")
        .fetch_one(&mut *conn)
        .await
        .expect("count the journal")
}

// ---------------------------------------------------------------------------------------------
// 2. Throughput
// ---------------------------------------------------------------------------------------------

/// Creates `runs` runs of `Five` (ids `f<i>`), 256 starts in flight.
async fn create_runs(client: &DurableEngine, runs: u64) {
    futures::stream::iter(0..runs)
        .map(|i| async move {
            client
                .start_with(
                    &Five,
                    i,
                    RunOptions::default().run_id(RunId::from(format!("f{i}"))),
                )
                .await
                .expect("start a run")
        })
        .buffer_unordered(256)
        .for_each(|_| async {})
        .await;
}

/// What one throughput measurement gave.
struct Rate {
    /// Completed runs per second in the steady state (10 % to 90 % of the completions).
    steady: f64,
    /// Completed runs, and the time from release to the last completion counted.
    completed: i64,
    elapsed: Duration,
    /// CPU of the workers (share of one core) and of the machine (share of all cores).
    worker_cpu: f64,
    machine_busy: f64,
    /// Step bodies the workers ran (5 per run when none ran twice).
    steps: u64,
    /// Most runs claimed at once (sampled every 25 ms).
    most_claimed: i64,
}

/// W claim-loop workers over `runs` pre-created runs, released at once; until all completed
/// or `limit` passed.
async fn claim_workers(
    server: &mut Server,
    workers: usize,
    runs: u64,
    max_runs: usize,
    limit: Duration,
) -> Rate {
    let url = server.fresh(&format!("tp{workers}w{max_runs}")).await;
    let client = client(&url).await;
    let created = Instant::now();
    create_runs(&client, runs).await;
    eprintln!(
        "  {runs} runs created in {:.1} s",
        created.elapsed().as_secs_f64()
    );
    let observer = pool(&url).await;
    let vars = [
        ("DIST_GATE", "1".to_owned()),
        ("DIST_MAX_RUNS", max_runs.to_string()),
        ("DIST_WORKFLOW", "five".to_owned()),
    ];
    let mut procs: Vec<Proc> = (0..workers)
        .map(|_| Proc::spawn("worker", &url, &vars))
        .collect();
    for p in &mut procs {
        p.expect("ready");
    }
    let cpu0: u64 = procs.iter().map(|p| process_ticks(p.pid())).sum();
    let machine0 = machine_ticks();
    let go = Instant::now();
    for p in &mut procs {
        p.send("go");
    }
    let mut samples: Vec<(Duration, i64)> = Vec::new();
    let mut most_claimed = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let (done, claimed): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE status = 'completed'),
                    COUNT(*) FILTER (WHERE status = 'claimed') FROM wf_runs",
        )
        .fetch_one(&observer)
        .await
        .expect("count the runs");
        most_claimed = most_claimed.max(claimed);
        samples.push((go.elapsed(), done));
        if done >= runs as i64 || go.elapsed() >= limit {
            break;
        }
    }
    let cpu1: u64 = procs.iter().map(|p| process_ticks(p.pid())).sum();
    let machine1 = machine_ticks();
    let failed = count(
        &observer,
        "SELECT COUNT(*) FROM wf_runs WHERE status IN ('failed', 'cancelled')",
    )
    .await;
    assert_eq!(failed, 0, "runs failed");
    let steps: u64 = procs
        .into_iter()
        .map(|p| p.finish("steps").parse::<u64>().unwrap_or(0))
        .sum();
    let (elapsed, completed) = *samples.last().expect("a sample");
    let at = |fraction: f64| {
        samples
            .iter()
            .find(|(_, c)| *c as f64 >= fraction * completed as f64)
            .copied()
            .unwrap_or((elapsed, completed))
    };
    let ((t10, c10), (t90, c90)) = (at(0.1), at(0.9));
    let steady = if t90 > t10 {
        (c90 - c10) as f64 / (t90 - t10).as_secs_f64()
    } else {
        completed as f64 / elapsed.as_secs_f64()
    };
    let wall = elapsed.as_secs_f64();
    Rate {
        steady,
        completed,
        elapsed,
        worker_cpu: (cpu1 - cpu0) as f64 / 100.0 / wall,
        machine_busy: (machine1.0 - machine0.0) as f64 / (machine1.1 - machine0.1).max(1) as f64,
        steps,
        most_claimed,
    }
}

/// W runner processes, each running `Five` one run after another for `secs`.
async fn run_loops(server: &mut Server, workers: usize, secs: f64) -> Rate {
    let url = server.fresh(&format!("loop{workers}")).await;
    drop(
        PostgresStore::connect(&url)
            .await
            .expect("create the tables"),
    );
    let vars = [("DIST_SECS", secs.to_string())];
    let mut procs: Vec<Proc> = (0..workers)
        .map(|_| Proc::spawn("runner", &url, &vars))
        .collect();
    for p in &mut procs {
        p.expect("ready");
    }
    let cpu0: u64 = procs.iter().map(|p| process_ticks(p.pid())).sum();
    let machine0 = machine_ticks();
    let go = Instant::now();
    for p in &mut procs {
        p.send("go");
    }
    let mut rate = 0.0;
    let mut completed = 0;
    let mut cpu1 = 0;
    let mut reports = Vec::new();
    for p in &mut procs {
        reports.push(p.expect("done"));
        cpu1 += process_ticks(p.pid());
    }
    let machine1 = machine_ticks();
    let elapsed = go.elapsed();
    for report in reports {
        let mut fields = report.split_whitespace();
        let runs: f64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let secs: f64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(1.0);
        rate += runs / secs;
        completed += runs as i64;
    }
    drop(procs);
    Rate {
        steady: rate,
        completed,
        elapsed,
        worker_cpu: (cpu1 - cpu0) as f64 / 100.0 / elapsed.as_secs_f64(),
        machine_busy: (machine1.0 - machine0.0) as f64 / (machine1.1 - machine0.1).max(1) as f64,
        steps: completed as u64 * 5,
        most_claimed: workers as i64,
    }
}

async fn throughput(server: &mut Server, cfg: &Config, ceiling: &Ceiling, table: &mut Table) {
    table.section("2. throughput: 5-step no-op workflow, W worker processes");
    let row = |table: &mut Table,
               what: &str,
               workers: usize,
               rate: &Rate,
               batched: bool,
               commits_per_run: f64| {
        let steps = rate.steady * 5.0;
        let reference = if batched {
            ceiling
                .step10_records(workers)
                .map(|(c, r)| (format!("step10 -c {c}: {r:.0} records/s"), r))
        } else {
            ceiling
                .step1(workers)
                .map(|(c, r)| (format!("step1 -c {c}: {r:.0} commits/s"), r))
        };
        let (reference, value) = reference.unwrap_or_default();
        let commits = if commits_per_run > 0.0 {
            format!(
                "{:.0} commits/s ({commits_per_run} per run) = {} of the ceiling; ",
                rate.steady * commits_per_run,
                ratio(rate.steady * commits_per_run, value)
            )
        } else {
            String::new()
        };
        let note = format!(
            "{commits}{} runs in {:.1} s; {} step bodies run; up to {} runs claimed at once; workers' CPU {:.0} % of a core, machine {:.0} % busy",
            rate.completed,
            rate.elapsed.as_secs_f64(),
            rate.steps,
            rate.most_claimed,
            100.0 * rate.worker_cpu,
            100.0 * rate.machine_busy
        );
        table.row(
            &format!("{what}, {workers} worker(s)"),
            format!("{steps:.0} steps/s = {:.0} wf/s", rate.steady),
            reference,
            ratio(steps, value),
            &note,
        );
    };
    for &workers in &cfg.workers {
        eprintln!("throughput: batched, {workers} worker(s)");
        let rate = claim_workers(
            server,
            workers,
            cfg.batched_runs,
            cfg.max_runs,
            Duration::from_secs(120),
        )
        .await;
        row(
            table,
            &format!("batched (max_runs {})", cfg.max_runs),
            workers,
            &rate,
            true,
            0.0,
        );
    }
    for &workers in &cfg.workers {
        eprintln!("throughput: run loop, {workers} worker(s)");
        let rate = run_loops(server, workers, cfg.unbatched_secs).await;
        // create, claim, 5 steps, finish: each its own commit
        row(table, "unbatched: `run` loop", workers, &rate, false, 8.0);
    }
    for &workers in &cfg.workers {
        eprintln!("throughput: max_runs(1), {workers} worker(s)");
        let runs = 4000;
        let limit = Duration::from_secs_f64(cfg.claim1_secs);
        let rate = claim_workers(server, workers, runs, 1, limit).await;
        row(
            table,
            "unbatched: claim loop, max_runs(1)",
            workers,
            &rate,
            false,
            0.0,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Latency
// ---------------------------------------------------------------------------------------------

fn latency_row(
    table: &mut Table,
    what: &str,
    samples: &mut [Duration],
    commit_ms: f64,
    note: &str,
) {
    samples.sort();
    let (p50, p99) = (percentile(samples, 50.0), percentile(samples, 99.0));
    let floor = 6.0 * commit_ms;
    table.row(
        what,
        format!("p50 {} / p99 {} (n = {})", ms(p50), ms(p99), samples.len()),
        if commit_ms > 0.0 {
            format!("6 commits x {commit_ms:.3} ms = {floor:.2} ms")
        } else {
            String::new()
        },
        if commit_ms > 0.0 {
            format!("p50 {:.1}x", p50.as_secs_f64() * 1e3 / floor)
        } else {
            "-".into()
        },
        note,
    );
}

async fn latency(server: &mut Server, cfg: &Config, ceiling: &Ceiling, table: &mut Table) {
    table.section("3. latency: 3-step no-op workflow, start -> result, unloaded, one worker");
    let commit_ms = ceiling
        .latency_ms
        .get(&("step1", 1))
        .copied()
        .unwrap_or(0.0);
    let n = cfg.latency_samples;

    // The client is the worker's own engine: starting a run rings its claim loop at once.
    eprintln!("latency: client in the worker's process");
    let url = server.fresh("lat_in").await;
    let store = PostgresStore::connect(&url).await.expect("open the store");
    let engine = DurableEngine::new(store);
    engine.register(&Three).await.expect("register");
    let mut samples = Vec::with_capacity(n);
    for i in 0..(n + 20) as u64 {
        let started = Instant::now();
        let run = engine
            .start_with(&Three, i, RunOptions::default().run_id(format!("in{i}")))
            .await
            .expect("start");
        let out = run.wait().await.expect("result");
        assert_eq!(out, i + 3);
        if i >= 20 {
            samples.push(started.elapsed());
        }
    }
    engine
        .shutdown(Duration::from_secs(1))
        .await
        .expect("shut down");
    latency_row(
        table,
        "same process: start_with + wait",
        &mut samples,
        commit_ms,
        "the start rings the worker's claim loop in-process; 20 warm-up runs not counted",
    );

    // The worker is another process: it hears of the run by the store's NOTIFY (its claim loop
    // listens) or its next poll; the client reads the run's status.
    eprintln!("latency: worker in another process");
    let url = server.fresh("lat_out").await;
    let client = client(&url).await;
    let mut worker = Proc::spawn("worker", &url, &[("DIST_WORKFLOW", "three".to_owned())]);
    worker.expect("go");
    let mut polled = Vec::with_capacity(n);
    for i in 0..(n + 20) as u64 {
        let started = Instant::now();
        let id = client
            .start_with(&Three, i, RunOptions::default().run_id(format!("out{i}")))
            .await
            .expect("start")
            .id()
            .clone();
        loop {
            let record = client.status(&id).await.expect("status");
            if record.summary.status.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if i >= 20 {
            polled.push(started.elapsed());
        }
    }
    latency_row(
        table,
        "other process: start_with, then status every 1 ms",
        &mut polled,
        commit_ms,
        "the worker's claim loop is woken by the store's NOTIFY of the new run",
    );
    let mut waited = Vec::with_capacity(cfg.wait_samples);
    for i in 0..cfg.wait_samples as u64 {
        let started = Instant::now();
        let run = client
            .start_with(&Three, i, RunOptions::default().run_id(format!("wait{i}")))
            .await
            .expect("start");
        run.wait().await.expect("result");
        waited.push(started.elapsed());
    }
    latency_row(
        table,
        "other process: start_with + wait",
        &mut waited,
        commit_ms,
        "`wait` on a run executing elsewhere re-reads it every 200 ms (durable/mod.rs POLL)",
    );
    worker.kill();
}

// ---------------------------------------------------------------------------------------------
// 4. Takeover
// ---------------------------------------------------------------------------------------------

/// One victim/rescuer pair in its own database.
struct Pair {
    url: String,
    observer: PgPool,
}

/// What happened to one victim's runs after the signal.
#[derive(Clone, Copy, Default)]
struct Outcome {
    released: Option<Duration>,
    taken: Option<Duration>,
}

async fn takeover(server: &mut Server, cfg: &Config, table: &mut Table) {
    let lease = Duration::from_millis(cfg.lease_ms);
    table.section(&format!(
        "4. takeover: a worker holding {} runs dies; lease {} ms, heartbeat {} ms",
        cfg.victim_runs,
        cfg.lease_ms,
        WorkerOptions::default()
            .lease(lease)
            .heartbeat_interval()
            .as_millis()
    ));
    let mut pairs = Vec::new();
    for i in 0..cfg.pairs {
        let url = server.fresh(&format!("takeover{i}")).await;
        drop(
            PostgresStore::connect(&url)
                .await
                .expect("create the tables"),
        );
        let observer = pool(&url).await;
        pairs.push(Pair { url, observer });
    }
    let mut seed = 7u64;
    for (mode, signal) in [("SIGKILL", "KILL"), ("SIGSTOP", "STOP")] {
        let mut outcomes: Vec<Outcome> = Vec::new();
        for round in 0..cfg.rounds {
            eprintln!("takeover: {mode}, round {round}");
            outcomes.extend(takeover_round(&pairs, cfg, signal, round, &mut seed).await);
        }
        let released: Vec<Duration> = outcomes.iter().filter_map(|o| o.released).collect();
        let mut taken: Vec<Duration> = outcomes.iter().filter_map(|o| o.taken).collect();
        let missed = outcomes.len() - taken.len();
        taken.sort();
        let mut released = released;
        released.sort();
        let (p50, p99) = (percentile(&taken, 50.0), percentile(&taken, 99.0));
        let how = if signal == "KILL" {
            "pid gone: the rescuer's next heartbeat sweep removes the worker"
        } else {
            "alive but silent (as if remote): reaped once its lease expired"
        };
        table.row(
            &format!("{mode}: signal -> all runs claimed by the rescuer"),
            format!(
                "p50 {} / p99 {} / max {} (n = {})",
                ms(p50),
                ms(p99),
                ms(taken.last().copied().unwrap_or_default()),
                taken.len()
            ),
            format!("lease {} ms", cfg.lease_ms),
            format!(
                "p50 {:.2}x / p99 {:.2}x",
                p50.as_secs_f64() / lease.as_secs_f64(),
                p99.as_secs_f64() / lease.as_secs_f64()
            ),
            &format!(
                "{how}; released (ready) after p50 {} / p99 {}{}",
                ms(percentile(&released, 50.0)),
                ms(percentile(&released, 99.0)),
                if missed > 0 {
                    format!("; {missed} NOT taken over within the limit")
                } else {
                    String::new()
                }
            ),
        );
    }
}

/// One round: in every pair, a victim takes `victim_runs` runs, a fresh rescuer starts and
/// idles, then the victim gets `signal` at a random moment; until every victim's runs are taken.
async fn takeover_round(
    pairs: &[Pair],
    cfg: &Config,
    signal: &str,
    round: usize,
    seed: &mut u64,
) -> Vec<Outcome> {
    let lease = cfg.lease_ms.to_string();
    let prefix = format!("{}{round}", signal.to_lowercase());
    let mut victims: Vec<(Proc, String, Vec<String>)> = Vec::new();
    for pair in pairs {
        let mut victim = Proc::spawn(
            "worker",
            &pair.url,
            &[
                ("DIST_WORKFLOW", "hold".to_owned()),
                ("DIST_HOLD", "1".to_owned()),
                ("DIST_LEASE_MS", lease.clone()),
                ("DIST_START", cfg.victim_runs.to_string()),
                ("DIST_PREFIX", prefix.clone()),
            ],
        );
        let worker_id = victim.expect("ready");
        let ids: Vec<String> = (0..cfg.victim_runs)
            .map(|i| format!("{prefix}-{i}"))
            .collect();
        victims.push((victim, worker_id, ids));
    }
    // Every run claimed by its victim (nobody else serves `Hold` yet).
    for (pair, (victim, worker_id, ids)) in pairs.iter().zip(&mut victims) {
        victim.expect("go");
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let held: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM wf_runs WHERE run_id = ANY($1) AND owner = $2 AND status = 'claimed'",
            )
            .bind(&*ids)
            .bind(&*worker_id)
            .fetch_one(&pair.observer)
            .await
            .expect("read the runs");
            if held == ids.len() as i64 {
                break;
            }
            assert!(Instant::now() < until, "a victim did not claim its runs");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // A fresh rescuer per victim, whose heartbeat (and takeover sweep) clock runs a random
    // 0-1 s ahead of its claim-poll clock, as in a worker that has run for a while.
    let mut rescuers: Vec<Proc> = pairs
        .iter()
        .map(|pair| {
            let delay = (1000.0 * random_fraction(seed)) as u64 + 1;
            Proc::spawn(
                "worker",
                &pair.url,
                &[
                    ("DIST_WORKFLOW", "hold".to_owned()),
                    ("DIST_LEASE_MS", lease.clone()),
                    ("DIST_DELAY_MS", delay.to_string()),
                ],
            )
        })
        .collect();
    let mut registered = Vec::new();
    for rescuer in &mut rescuers {
        rescuer.expect("go");
        registered.push(Instant::now());
    }
    // Each rescuer idles for 1.6 s after registering `Hold` (its claim poll grows from 50 ms
    // to 1 s by then), then its victim gets the signal at a random moment within the next
    // second: the claim poll's phase at the signal is uniform, as for an idle worker.
    let due: Vec<Instant> = registered
        .iter()
        .map(|at| *at + Duration::from_millis(1600 + (1000.0 * random_fraction(seed)) as u64))
        .collect();
    let mut signalled: Vec<Option<Instant>> = vec![None; pairs.len()];
    let mut outcomes = vec![Outcome::default(); pairs.len()];
    let mut done = vec![false; pairs.len()];
    let limit = Duration::from_millis(3 * cfg.lease_ms + 5000);
    loop {
        let now = Instant::now();
        for (i, (victim, _, _)) in victims.iter().enumerate() {
            if signalled[i].is_none() && now >= due[i] {
                // A killed victim stays a zombie until the round ends: the engine counts a
                // zombie as gone.
                victim.signal(signal);
                signalled[i] = Some(Instant::now());
            }
        }
        let mut pending = false;
        for (i, (pair, (_, worker_id, ids))) in pairs.iter().zip(&victims).enumerate() {
            let Some(at) = signalled[i] else {
                pending = true;
                continue;
            };
            if done[i] {
                continue;
            }
            let rows: Vec<(String, Option<String>)> =
                sqlx::query_as("SELECT status, owner FROM wf_runs WHERE run_id = ANY($1)")
                    .bind(ids)
                    .fetch_all(&pair.observer)
                    .await
                    .expect("read the runs");
            let seen = at.elapsed();
            let away = |(status, owner): &(String, Option<String>)| {
                status != "claimed" || owner.as_deref() != Some(worker_id.as_str())
            };
            let taken = |(status, owner): &(String, Option<String>)| {
                status == "completed"
                    || (status == "claimed" && owner.as_deref() != Some(worker_id.as_str()))
            };
            if outcomes[i].released.is_none() && rows.iter().any(away) {
                outcomes[i].released = Some(seen);
            }
            if rows.len() == ids.len() && rows.iter().all(taken) {
                outcomes[i].taken = Some(seen);
                done[i] = true;
            } else if seen > limit {
                done[i] = true;
                eprintln!("  a victim's runs were not taken over within {limit:?}");
            } else {
                pending = true;
            }
        }
        if !pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (victim, _, _) in victims {
        victim.kill();
    }
    for rescuer in rescuers {
        rescuer.finish("steps");
    }
    outcomes
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches`: nothing to run as a test
    }
    if let Ok(role) = std::env::var("DIST_ROLE") {
        return child_main(&role);
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: do not spend
    // minutes of a test run (set DIST_SECTIONS to run the binary by hand).
    if !std::env::args().any(|a| a == "--bench") && std::env::var_os("DIST_SECTIONS").is_none() {
        eprintln!("distributed bench: run it with `cargo bench` (or set DIST_SECTIONS)");
        return;
    }
    let Some(mut server) = Server::from_env() else {
        eprintln!(
            "distributed bench: set WORKFLOW_BENCH_POSTGRES_URL or WORKFLOW_TEST_POSTGRES_URL \
             (`bash scripts/postgres.sh start` prints the export line); nothing measured"
        );
        return;
    };
    let cfg = Config::from_env();
    let runtime = child_runtime();
    let started = Instant::now();
    runtime.block_on(async {
        let mut table = Table::default();
        let mut bench = if cfg.runs("pgbench") {
            PgBench::open(&mut server).await
        } else {
            None
        };
        let ceiling = if cfg.runs("pgbench") {
            pgbench(bench.as_mut(), &cfg, &mut table).await
        } else {
            Ceiling::default()
        };
        if cfg.runs("throughput") {
            throughput(&mut server, &cfg, &ceiling, &mut table).await;
        }
        if cfg.runs("latency") {
            latency(&mut server, &cfg, &ceiling, &mut table).await;
        }
        if cfg.runs("takeover") {
            takeover(&mut server, &cfg, &mut table).await;
        }
        if let Some(bench) = bench.as_mut().filter(|_| cfg.recheck_secs > 0) {
            recheck(bench, &cfg, &ceiling, &mut table).await;
        }
        drop(bench);
        server.drop_all().await;
        table.print();
    });
    println!(
        "\n{} logical CPUs; bench took {:.0} s",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs_f64()
    );
}
