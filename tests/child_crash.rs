//! A parent killed (SIGKILL, a real process) while its child workflow's steps are in flight
//! resumes both: no committed step of the parent or of the child runs again, and every run ends
//! with the result of an uninterrupted one.
//!
//! The worker (`tests/child_crash_worker/worker.rs`) logs every step execution with its
//! incarnation and prints, at the end, which incarnation's execution each journal committed.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use temp_db::TempDb;

const RUNS: u64 = 4;

fn spawn_worker(db: &Path, log: &Path, incarnation: u32) -> Child {
    Command::new(env!("CARGO_BIN_EXE_child-crash-worker"))
        .arg(db)
        .arg(log)
        .arg(incarnation.to_string())
        .arg(RUNS.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the worker")
}

/// `(incarnation, key)` per logged step execution.
fn executions(log: &Path) -> Vec<(u32, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (inc, key) = line.split_once(' ')?;
            Some((inc.parse().ok()?, key.to_owned()))
        })
        .collect()
}

/// Waits until every run's log has an execution of its key ending with `suffix` by
/// `incarnation`, then kills the worker: that step is in flight (each step works 300 ms).
fn kill_when(mut worker: Child, log: &Path, incarnation: u32, suffix: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = executions(log)
            .iter()
            .filter(|(inc, key)| *inc == incarnation && key.ends_with(suffix))
            .count();
        if seen as u64 >= RUNS {
            break;
        }
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the worker ended before `{suffix}` ran in every run"
        );
        assert!(
            Instant::now() < deadline,
            "`{suffix}` never ran in every run"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    worker.kill().expect("SIGKILL the worker");
    worker.wait().expect("reap the worker");
}

fn temp(name: &str) -> TempDb {
    TempDb::new(&format!("child-crash-{name}"))
}

#[test]
fn a_parent_killed_during_its_child_resumes_both_without_rerunning_committed_steps() {
    let (db, log) = (temp("db"), temp("log"));
    // Killed while the children box up (their `pick` committed), then while they label.
    kill_when(spawn_worker(&db, &log, 1), &log, 1, "/pack/box_up");
    kill_when(spawn_worker(&db, &log, 2), &log, 2, "/pack/label");
    let output = spawn_worker(&db, &log, 3)
        .wait_with_output()
        .expect("the last worker");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the last worker failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut results = HashMap::new();
    let mut commits = HashMap::new();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["result", run, value] => {
                results.insert(run.to_owned(), value.parse::<u64>().unwrap());
            }
            ["commit", key, inc] => {
                let previous = commits.insert(key.to_owned(), inc.parse::<u32>().unwrap());
                assert!(previous.is_none(), "{key} committed twice");
            }
            _ => {}
        }
    }
    for n in 0..RUNS {
        assert_eq!(
            results.get(&format!("run-{n}")),
            Some(&((n * 10 + 1) * 2 + 3)),
            "{stdout}"
        );
    }
    // Parent steps and child steps alike: 3 + 3 per run, each committed once.
    assert_eq!(commits.len() as u64, RUNS * 6, "{commits:?}");
    let executions = executions(&log);
    for (key, committed) in &commits {
        let runs: Vec<u32> = executions
            .iter()
            .filter(|(_, k)| k == key)
            .map(|(inc, _)| *inc)
            .collect();
        // An execution after the one committed would be committed work run again.
        assert!(
            runs.iter().all(|inc| inc <= committed),
            "{key} committed by incarnation {committed} ran again: {runs:?}"
        );
        // `pack` itself runs no body: its output is its child's.
        if !key.ends_with("/pack") {
            assert!(runs.contains(committed), "{key}: {runs:?}");
        }
    }
    // The kills hit the children mid-way: `pick` ran once, `box_up` and `label` again.
    for n in 0..RUNS {
        let count = |step: &str| {
            let key = format!("~run-{n}/pack/{step}");
            executions.iter().filter(|(_, k)| *k == key).count()
        };
        assert_eq!(count("pick"), 1, "run-{n}");
        assert_eq!(count("box_up"), 2, "run-{n}");
        assert_eq!(count("label"), 2, "run-{n}");
    }
}
