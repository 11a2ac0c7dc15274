//! Crash test of the durable SQLite engine: a worker process (`tests/crash_worker/worker.rs`)
//! is SIGKILLed at random moments and restarted on the same database until it finishes by
//! itself; at least 100 kills over several fresh databases.
//!
//! The workflow has a chain, a parallel fan-out with an all-join, a `for_each` over 10 items,
//! three saga steps and, for a third of the runs, a final step that fails for good so that the
//! saga steps are compensated. Every step, item and compensation appends
//! `<incarnation> <kind> <idempotency key>` to a side-effect log, and returns its incarnation in
//! its output, so the journal says which incarnation's execution was committed. Checked:
//!
//! (a) the results equal those of an uninterrupted run on a fresh database;
//! (b) a committed step is never run again: no execution of its key in a later incarnation
//!     than the one that committed it; it did run in that incarnation; within one
//!     incarnation every key runs at most once; nothing runs that is not committed, except
//!     the failing step; no forward step runs once the run's stop is journaled;
//! (c) compensations ran in reverse completion order of the saga steps (in the journal, and
//!     within every incarnation in the log), each at least once, and never again once
//!     journaled (at least once, not more than needed).
//!
//! The PRNG seed is printed; set `CRASH_SEED=N` to replay a sequence of kill delays.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 8;
/// Total kills to reach, over all groups.
const KILLS: usize = 100;
/// Kills per group (fresh database) at most; then the worker is left to finish.
const KILLS_PER_GROUP: usize = 40;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform enough in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn spawn_worker(db: &Path, log: &Path, incarnation: usize) -> Child {
    Command::new(env!("CARGO_BIN_EXE_crash-worker"))
        .arg(db)
        .arg(log)
        .arg(incarnation.to_string())
        .arg(RUNS.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the crash worker")
}

/// Waits for a worker that exited (or is left to exit) by itself; its stdout.
fn finish_worker(mut child: Child, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("poll the worker").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("reap the worker");
            panic!(
                "{what}: the worker hung for 60 s\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().expect("wait for the worker");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what}: the worker failed with {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// What the final worker printed.
#[derive(Default, Debug)]
struct Summary {
    results: BTreeMap<String, String>,
    /// Step or item key -> the incarnation whose execution was committed.
    commits: HashMap<String, usize>,
    /// Run -> saga steps in completion order.
    sagas: HashMap<String, Vec<String>>,
    /// Run -> compensations in journal order.
    compensated: HashMap<String, Vec<String>>,
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_summary(stdout: &str) -> Summary {
    let mut s = Summary::default();
    for line in stdout.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "result" => {
                let (run, result) = rest.split_once(' ').unwrap();
                s.results.insert(run.to_owned(), result.to_owned());
            }
            "commit" => {
                let (key, inc) = rest.rsplit_once(' ').unwrap();
                let inc = inc
                    .parse()
                    .unwrap_or_else(|_| panic!("bad incarnation in `{line}`"));
                assert!(
                    s.commits.insert(key.to_owned(), inc).is_none(),
                    "{key} journaled twice"
                );
            }
            "sagas" | "compensated" => {
                let (run, names) = rest.split_once(' ').unwrap_or((rest, ""));
                let map = if tag == "sagas" {
                    &mut s.sagas
                } else {
                    &mut s.compensated
                };
                map.insert(run.to_owned(), list(names));
            }
            _ => panic!("unexpected worker output line: `{line}`"),
        }
    }
    s
}

struct Entry {
    inc: usize,
    kind: String,
    key: String,
}

fn read_log(path: &Path) -> Vec<Entry> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let (Some(inc), Some(kind), Some(key)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("torn log line `{line}`");
            };
            Entry {
                inc: inc
                    .parse()
                    .unwrap_or_else(|_| panic!("torn log line `{line}`")),
                kind: kind.to_owned(),
                key: key.to_owned(),
            }
        })
        .collect()
}

/// `run-3/work/7` -> `run-3`.
fn run_of(key: &str) -> &str {
    key.split('/').next().unwrap()
}

fn compensation_of(saga: &str) -> String {
    format!("undo_{saga}")
}

/// What the kills hit, over a group's incarnations.
#[derive(Default)]
struct Coverage {
    /// Executions of a key beyond its first (at least once, after a kill).
    repeats: usize,
    /// Failed runs whose stop was journaled before a kill (resumed into compensation).
    stops_resumed: usize,
    /// Compensations journaled before a kill.
    compensations_resumed: usize,
}

/// Checks (a), (b) and (c) for one group.
fn verify(
    group: usize,
    summary: &Summary,
    reference: &Summary,
    log: &[Entry],
    last_inc: usize,
) -> Coverage {
    let ctx = |msg: String| format!("group {group}: {msg}");
    // (a)
    assert_eq!(
        summary.results,
        reference.results,
        "{}",
        ctx("results differ from an uninterrupted run".into())
    );
    assert_eq!(
        summary.commits.len(),
        reference.commits.len(),
        "{}",
        ctx("a different number of committed steps".into())
    );

    let failing: HashSet<&str> = summary
        .results
        .iter()
        .filter(|(_, r)| r.starts_with("failed "))
        .map(|(run, _)| run.as_str())
        .collect();
    let mut per_inc: HashSet<(usize, &str)> = HashSet::new();
    let mut executions: HashMap<&str, usize> = HashMap::new();
    let mut stopped_at: HashMap<&str, usize> = HashMap::new();
    let mut comp_journaled_at: HashMap<&str, usize> = HashMap::new();
    for e in log {
        match e.kind.as_str() {
            "snap-stopped" => {
                stopped_at.entry(e.key.as_str()).or_insert(e.inc);
            }
            "snap-comp" => {
                comp_journaled_at.entry(e.key.as_str()).or_insert(e.inc);
            }
            "step" | "item" | "comp" => {
                assert!(
                    e.inc <= last_inc,
                    "{}",
                    ctx(format!("incarnation {} in the log", e.inc))
                );
                assert!(
                    per_inc.insert((e.inc, e.key.as_str())),
                    "{}",
                    ctx(format!("{} ran twice in incarnation {}", e.key, e.inc))
                );
                *executions.entry(e.key.as_str()).or_default() += 1;
            }
            other => panic!("{}", ctx(format!("unknown log kind `{other}`"))),
        }
    }

    // (b) forward steps.
    for e in log.iter().filter(|e| e.kind == "step" || e.kind == "item") {
        let run = run_of(&e.key);
        match summary.commits.get(&e.key) {
            Some(&committed) => assert!(
                e.inc <= committed,
                "{}",
                ctx(format!(
                    "{} was committed by incarnation {committed} but ran again in incarnation {}",
                    e.key, e.inc
                ))
            ),
            None => assert!(
                failing.contains(run) && e.key == format!("{run}/finish"),
                "{}",
                ctx(format!(
                    "{} ran in incarnation {} but was never committed",
                    e.key, e.inc
                ))
            ),
        }
        if let Some(&stop) = stopped_at.get(run) {
            assert!(
                e.inc < stop,
                "{}",
                ctx(format!(
                    "{} ran in incarnation {} after its run's stop was journaled (seen at {stop})",
                    e.key, e.inc
                ))
            );
        }
    }
    for (key, &committed) in &summary.commits {
        assert!(
            per_inc.contains(&(committed, key.as_str())),
            "{}",
            ctx(format!(
                "{key} was committed by incarnation {committed}, which did not run it"
            ))
        );
    }

    // (c) compensations.
    for (run, sagas) in &summary.sagas {
        let journaled = &summary.compensated[run];
        let comp_lines: Vec<&Entry> = log
            .iter()
            .filter(|e| e.kind == "comp" && run_of(&e.key) == run)
            .collect();
        if !failing.contains(run.as_str()) {
            assert!(
                journaled.is_empty() && comp_lines.is_empty(),
                "{}",
                ctx(format!("{run} succeeded but was compensated"))
            );
            continue;
        }
        assert_eq!(
            sagas.len(),
            3,
            "{}",
            ctx(format!("{run}: saga steps {sagas:?}"))
        );
        let expected: Vec<String> = sagas.iter().rev().map(|s| compensation_of(s)).collect();
        assert_eq!(
            journaled,
            &expected,
            "{}",
            ctx(format!(
                "{run}: journaled compensations vs reverse completion order"
            ))
        );
        let position = |key: &str| {
            let name = key.rsplit('/').next().unwrap();
            expected
                .iter()
                .position(|c| c == name)
                .unwrap_or_else(|| panic!("unknown compensation {key}"))
        };
        for c in &expected {
            let key = format!("{run}/{c}");
            assert!(
                comp_lines.iter().any(|e| e.key == key),
                "{}",
                ctx(format!("{key} never ran"))
            );
            if let Some(&journaled_at) = comp_journaled_at.get(key.as_str()) {
                assert!(
                    comp_lines.iter().all(|e| e.key != key || e.inc < journaled_at),
                    "{}",
                    ctx(format!("{key} ran again after it was journaled (seen at incarnation {journaled_at})"))
                );
            }
        }
        let mut last: HashMap<usize, usize> = HashMap::new();
        for e in &comp_lines {
            let p = position(&e.key);
            if let Some(&before) = last.get(&e.inc) {
                assert!(
                    p > before,
                    "{}",
                    ctx(format!(
                        "{run}: compensations out of order in incarnation {}",
                        e.inc
                    ))
                );
            }
            last.insert(e.inc, p);
        }
    }
    Coverage {
        repeats: executions.values().map(|n| n - 1).sum(),
        stops_resumed: stopped_at.len(),
        compensations_resumed: comp_journaled_at.len(),
    }
}

#[test]
fn killed_workers_resume_without_rerunning_committed_steps() {
    let began = Instant::now();
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("CRASH_SEED={seed}");
    let mut rng = XorShift(seed);

    let reference = {
        let (db, log) = (dir.join("reference.db"), dir.join("reference.log"));
        let stdout = finish_worker(spawn_worker(&db, &log, 0), "uninterrupted run");
        let summary = parse_summary(&stdout);
        assert_eq!(summary.results.len(), RUNS);
        assert!(summary.commits.values().all(|&inc| inc == 0));
        let coverage = verify(usize::MAX, &summary, &summary, &read_log(&log), 0);
        assert_eq!(coverage.repeats, 0, "an uninterrupted run repeated a step");
        summary
    };
    let failing = reference
        .results
        .values()
        .filter(|r| r.starts_with("failed "))
        .count();
    assert!(
        failing > 0 && failing < RUNS,
        "some runs fail, some succeed: {:?}",
        reference.results
    );

    let (mut kills, mut groups, mut incarnations) = (0, 0, 0);
    let mut total = Coverage::default();
    while kills < KILLS {
        let group = groups;
        groups += 1;
        let (db, log) = (
            dir.join(format!("group-{group}.db")),
            dir.join(format!("group-{group}.log")),
        );
        let mut inc = 0;
        let mut group_kills = 0;
        let stdout = loop {
            let mut child = spawn_worker(&db, &log, inc);
            incarnations += 1;
            if group_kills >= KILLS_PER_GROUP {
                break finish_worker(
                    child,
                    &format!("group {group}, incarnation {inc} (no more kills)"),
                );
            }
            std::thread::sleep(Duration::from_millis(rng.range(1, 40)));
            if child.try_wait().expect("poll the worker").is_some() {
                break finish_worker(child, &format!("group {group}, incarnation {inc}"));
            }
            child.kill().expect("SIGKILL the worker");
            child.wait().expect("reap the worker");
            group_kills += 1;
            inc += 1;
        };
        kills += group_kills;
        let summary = parse_summary(&stdout);
        let coverage = verify(group, &summary, &reference, &read_log(&log), inc);
        total.repeats += coverage.repeats;
        total.stops_resumed += coverage.stops_resumed;
        total.compensations_resumed += coverage.compensations_resumed;
    }
    let elapsed = began.elapsed();
    println!(
        "{kills} kills over {groups} groups ({incarnations} worker processes, {RUNS} runs each group); \
         {} executions repeated after a kill; {} failed runs and {} compensations resumed from \
         the journal; {:.1?}",
        total.repeats,
        total.stops_resumed,
        total.compensations_resumed,
        elapsed
    );
    assert!(
        total.repeats > 0,
        "no kill ever interrupted a step in flight: the test did not test much"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
