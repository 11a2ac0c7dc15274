//! The `workflow` command line against a real SQLite store, run as a separate process.

#[path = "../../tests/common/temp_db.rs"]
mod temp_db;
use std::process::Command;
use std::time::Duration;
use temp_db::TempDb;

use workflow_core::prelude::*;

#[derive(Clone)]
struct Expense;

#[workflow]
impl Expense {
    #[step]
    async fn submit(&self, amount: u32) -> u32 {
        amount
    }

    #[step(after = submit)]
    async fn decide(&self, amount: u32, approval: Signal<bool>) -> String {
        format!("{amount}: {:?}", approval.received())
    }
}

/// Runs `workflow --store STORE ARGS..` and returns (success, stdout, stderr).
fn workflow(store: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_workflow"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("run the workflow binary");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn store_with_runs(name: &str) -> (TempDb, DurableEngine) {
    let path = TempDb::new(&format!("workflow-cli-{name}"));
    let engine = Engine::sqlite(&path).await.unwrap();
    engine
        .set_queue(workflow_core::store::QueueConfig {
            queue: "payments".into(),
            concurrency: Some(4),
            rate_per_sec: Some(50.0),
            burst: 10,
        })
        .await
        .unwrap();
    let waiting = engine
        .start_with_id(&Expense, "expense-1", 120)
        .await
        .unwrap();
    let done = engine
        .start_with_id(&Expense, "expense-2", 80)
        .await
        .unwrap();
    for run in [&waiting, &done] {
        let started = std::time::Instant::now();
        while run.status().await.unwrap() != RunStatus::Waiting {
            assert!(started.elapsed() < Duration::from_secs(30), "never parked");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    done.signal(Expense::signals().approval, true)
        .await
        .unwrap();
    done.wait().await.unwrap();
    (path, engine)
}

/// Creates a run on `queue` that stays ready: no worker knows its definition.
async fn ready_run(engine: &DurableEngine, id: &str, queue: &str) {
    let run = workflow_core::store::NewRun {
        run_id: id.into(),
        workflow: "Stray".into(),
        version: 1,
        definition_hash: 7,
        queue: queue.into(),
        deadline_at: None,
        input: b"1".to_vec(),
        trace_context: None,
    };
    engine.store().create_run(&run).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_list_show_history_and_definitions() {
    let (path, engine) = store_with_runs("read").await;

    let (ok, out, err) = workflow(&path, &["--json", "runs", "list"]);
    assert!(ok, "{err}");
    let runs = json(&out);
    let statuses: Vec<(&str, &str)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [("expense-1", "waiting"), ("expense-2", "completed")]
    );

    let (ok, out, _) = workflow(&path, &["--json", "runs", "list", "--status", "waiting"]);
    assert!(ok);
    assert_eq!(json(&out).as_array().unwrap().len(), 1);

    let (ok, out, _) = workflow(&path, &["runs", "show", "expense-1"]);
    assert!(ok);
    assert!(
        out.contains("waiting for") && out.contains("approval"),
        "{out}"
    );

    let (ok, out, _) = workflow(&path, &["--json", "runs", "show", "expense-2"]);
    assert!(ok);
    assert_eq!(json(&out)["output"], serde_json::json!("80: Some(true)"));

    let (ok, out, _) = workflow(&path, &["--json", "runs", "history", "expense-2"]);
    assert!(ok);
    let events: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["step"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            "completed submit",
            "waiting decide",
            "signal received decide",
            "completed decide"
        ]
    );

    let (ok, out, _) = workflow(&path, &["runs", "graph", "expense-1"]);
    assert!(ok);
    assert!(out.starts_with("flowchart TD"), "{out}");
    assert!(out.contains("class submit completed"), "{out}");
    assert!(out.contains("class decide waiting"), "{out}");
    assert!(out.contains("submit --> decide"), "{out}");
    let (ok, out, _) = workflow(&path, &["runs", "graph", "expense-1", "--format", "dot"]);
    assert!(ok && out.starts_with("digraph \"Expense\""), "{out}");
    assert!(
        out.contains(r#"label="decide (waiting)""#) && out.contains(r#""submit" -> "decide";"#),
        "{out}"
    );
    let (ok, out, _) = workflow(
        &path,
        &["--json", "runs", "graph", "expense-1", "--format", "svg"],
    );
    assert!(ok);
    let svg = json(&out)["svg"].as_str().unwrap().to_owned();
    assert!(
        svg.starts_with("<svg")
            && svg.contains("decide (waiting)")
            && svg.contains(".waiting{fill"),
        "{svg}"
    );

    let (ok, out, _) = workflow(&path, &["--json", "definitions"]);
    assert!(ok);
    let defs = json(&out);
    assert_eq!(defs[0]["workflow"], "Expense");
    assert_eq!(defs[0]["steps"], serde_json::json!(["submit", "decide"]));

    for (id, queue) in [("stray-1", "payments"), ("stray-2", "reports")] {
        ready_run(&engine, id, queue).await;
    }
    let (ok, out, _) = workflow(&path, &["--json", "queues"]);
    assert!(ok);
    assert_eq!(
        json(&out),
        serde_json::json!([
            {"queue": "payments", "ready": 1, "concurrency": 4, "rate_per_sec": 50.0, "burst": 10},
            {"queue": "reports", "ready": 1, "concurrency": null, "rate_per_sec": null, "burst": null},
        ])
    );
    let (ok, out, _) = workflow(&path, &["queues"]);
    assert!(
        ok && out.contains("ready") && out.contains("reports"),
        "{out}"
    );

    let (ok, out, _) = workflow(&path, &["--json", "workers"]);
    assert!(ok);
    assert_eq!(json(&out).as_array().unwrap().len(), 1, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_cancel_reaches_the_run() {
    let (path, engine) = store_with_runs("cancel").await;
    let (ok, out, err) = workflow(&path, &["runs", "cancel", "expense-1"]);
    assert!(ok, "{err}");
    assert!(out.contains("waiting"), "{out}");
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        engine.handle::<Expense>("expense-1").wait(),
    )
    .await
    .expect("the cancelled run ends");
    assert!(
        matches!(result, Err(WorkflowError::Cancelled { .. })),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_watch_follows_a_run_until_it_ends() {
    let (path, engine) = store_with_runs("watch").await;
    let watcher = {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            workflow(&path, &["--json", "runs", "watch", "expense-1"])
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    engine
        .handle::<Expense>("expense-1")
        .signal(Expense::signals().approval, false)
        .await
        .unwrap();
    let (ok, out, err) = tokio::time::timeout(Duration::from_secs(30), watcher)
        .await
        .expect("watch ends with the run")
        .unwrap();
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(json).collect();
    assert_eq!(lines.last().unwrap()["status"], "completed");
    let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(
        events,
        ["completed", "waiting", "signal received", "completed"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_signal_checks_the_name_and_payload_before_storing() {
    let (path, engine) = store_with_runs("signal").await;
    let (ok, _, err) = workflow(
        &path,
        &[
            "runs",
            "signal",
            "expense-1",
            "aproval",
            "--payload",
            "true",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("no step of `Expense` waits for it (its signals: approval)"),
        "{err}"
    );
    let (ok, _, err) = workflow(
        &path,
        &["runs", "signal", "expense-1", "approval", "--payload", "42"],
    );
    assert!(!ok);
    // `bool` has a JSON Schema: the payload is checked against it.
    assert!(
        err.contains("does not match the signal's schema: 42 is not of type \"boolean\""),
        "{err}"
    );
    let (ok, _, err) = workflow(
        &path,
        &[
            "runs",
            "signal",
            "expense-1",
            "approval",
            "--payload",
            "yes",
        ],
    );
    assert!(!ok);
    assert!(err.contains("not JSON"), "{err}");
    // Nothing bad was stored: a correct signal finishes the run.
    let (ok, _, err) = workflow(
        &path,
        &[
            "runs",
            "signal",
            "expense-1",
            "approval",
            "--payload",
            "true",
        ],
    );
    assert!(ok, "{err}");
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        engine.handle::<Expense>("expense-1").wait(),
    )
    .await
    .expect("the run ends")
    .unwrap();
    assert_eq!(out, "120: Some(true)");
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let missing = std::env::temp_dir().join("workflow-cli-no-such-store.db");
    let (ok, _, err) = workflow(&missing, &["runs", "list"]);
    assert!(!ok);
    assert!(err.contains("no such file"), "{err}");
    let (ok, _, err) = workflow(&missing, &["runs", "list", "--status", "sleeping"]);
    assert!(!ok);
    assert!(err.contains("unknown status `sleeping`"), "{err}");
}

static SHIP_FAILS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

#[derive(Clone)]
struct Shipment;

#[workflow]
impl Shipment {
    #[step]
    async fn pack(&self, parcel: u32) -> u32 {
        parcel
    }
    #[step(after = pack)]
    async fn ship(&self, parcel: u32) -> Result<String, StepError> {
        if SHIP_FAILS.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StepError::permanent(StepError::msg("no carrier")));
        }
        Ok(format!("parcel {parcel} shipped"))
    }
    #[step(after = ship)]
    async fn notify(&self, shipped: String) -> String {
        format!("{shipped}; customer notified")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_retry_from_a_step_prints_its_plan_then_reruns_from_there() {
    let (path, engine) = store_with_runs("retry").await;
    engine.register(&Shipment).await.unwrap();
    let run = engine
        .start_with_id(&Shipment, "parcel-9", 9)
        .await
        .unwrap();
    run.wait().await.unwrap_err();

    // The dry run prints the plan and changes nothing.
    let (ok, out, err) = workflow(
        &path,
        &[
            "--json",
            "runs",
            "retry",
            "parcel-9",
            "--from",
            "ship",
            "--dry-run",
        ],
    );
    assert!(ok, "{err}");
    let plan = json(&out);
    assert_eq!(plan["kept"], serde_json::json!(["pack"]));
    assert_eq!(plan["rerun"], serde_json::json!(["ship", "notify"]));
    assert_eq!(plan["dry_run"], true);
    assert!(err.contains("nothing changed"), "{err}");
    assert_eq!(run.status().await.unwrap(), RunStatus::Failed);
    let (ok, table, _) = workflow(
        &path,
        &["runs", "retry", "parcel-9", "--from", "ship", "--dry-run"],
    );
    assert!(
        ok && table.contains("keep its output") && table.contains("run again"),
        "{table}"
    );

    // Refused: an unknown step (the steps are listed), a run that is not finished.
    let (ok, _, err) = workflow(&path, &["runs", "retry", "parcel-9", "--from", "shipp"]);
    assert!(
        !ok && err.contains("no step `shipp`") && err.contains("pack, ship, notify"),
        "{err}"
    );
    let (ok, _, err) = workflow(&path, &["runs", "retry", "expense-1", "--from", "submit"]);
    assert!(
        !ok && err.contains("only a finished run can be retried"),
        "{err}"
    );

    // The retry: the worker of this process takes the run up and finishes it.
    SHIP_FAILS.store(false, std::sync::atomic::Ordering::SeqCst);
    let (ok, _, err) = workflow(&path, &["runs", "retry", "parcel-9", "--from", "ship"]);
    assert!(ok, "{err}");
    let output = tokio::time::timeout(Duration::from_secs(30), run.wait())
        .await
        .expect("the retried run ends")
        .unwrap();
    assert_eq!(output, "parcel 9 shipped; customer notified");
    let (ok, out, _) = workflow(&path, &["--json", "runs", "history", "parcel-9"]);
    assert!(ok);
    let events: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert!(events.contains(&"retried".to_owned()), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_list_by_time_show_a_timeline_and_purge_finished_runs() {
    let (path, _engine) = store_with_runs("purge").await;
    // Created within the last hour; none before an hour ago.
    let (ok, out, err) = workflow(&path, &["--json", "runs", "list", "--since", "1h"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out).as_array().unwrap().len(), 2);
    let (ok, out, _) = workflow(&path, &["--json", "runs", "list", "--until", "1h"]);
    assert!(ok);
    assert_eq!(json(&out), serde_json::json!([]));
    let (ok, _, err) = workflow(&path, &["runs", "list", "--since", "yesterday-ish"]);
    assert!(!ok && err.contains("neither an RFC 3339 time"), "{err}");

    // The timeline: each step, its outcome and when it completed.
    let (ok, out, _) = workflow(&path, &["--json", "runs", "show", "expense-2"]);
    assert!(ok);
    let shown = json(&out);
    let timeline = shown["timeline"].as_array().unwrap();
    let steps: Vec<(&str, &str)> = timeline
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [("submit", "completed"), ("decide", "completed")]);
    assert!(
        timeline.iter().all(|s| s["completed_after_ms"].is_u64()),
        "{timeline:?}"
    );
    assert!(shown["run"]["finished_at"].is_string(), "{shown}");
    let (ok, out, _) = workflow(&path, &["runs", "show", "expense-2"]);
    assert!(
        ok && out.contains("completed at") && out.contains("took"),
        "{out}"
    );

    // Purge: only the finished run goes; piped, no progress bar.
    let (ok, out, err) = workflow(
        &path,
        &["--json", "runs", "purge", "--finished-before", "0s"],
    );
    assert!(ok, "{err}");
    assert_eq!(json(&out)["purged"], 1);
    assert!(err.is_empty(), "no progress bar when piped: {err}");
    let (ok, out, _) = workflow(&path, &["--json", "runs", "list"]);
    assert!(ok);
    let runs = json(&out);
    let left: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["expense-1"], "the live run stays");
    let (ok, _, err) = workflow(&path, &["runs", "show", "expense-2"]);
    assert!(!ok && err.contains("no run expense-2"), "{err}");
}

#[path = "../../tests/common/postgres_schema.rs"]
mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_works_on_postgresql() {
    let Some(url) = common::postgres_store("cli").await else {
        return;
    };
    let engine = Engine::postgres(&url).await.unwrap();
    let run = engine.start_with_id(&Expense, "pg-1", 5).await.unwrap();
    let started = std::time::Instant::now();
    while run.status().await.unwrap() != RunStatus::Waiting {
        assert!(started.elapsed() < Duration::from_secs(30), "never parked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (ok, out, err) = workflow(&url, &["--json", "runs", "list", "--since", "1h"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)[0]["status"], "waiting");
    let (ok, _, err) = workflow(
        &url,
        &["runs", "signal", "pg-1", "approval", "--payload", "true"],
    );
    assert!(ok, "{err}");
    tokio::time::timeout(Duration::from_secs(30), run.wait())
        .await
        .expect("the run ends")
        .unwrap();
    let (ok, out, _) = workflow(&url, &["--json", "runs", "show", "pg-1"]);
    assert!(ok);
    assert_eq!(json(&out)["timeline"].as_array().unwrap().len(), 2);
    let (ok, out, _) = workflow(&url, &["--json", "runs", "history", "pg-1"]);
    assert!(ok);
    assert_eq!(json(&out).as_array().unwrap().len(), 4);
    let (ok, out, err) = workflow(
        &url,
        &[
            "--json",
            "runs",
            "retry",
            "pg-1",
            "--from",
            "decide",
            "--dry-run",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(json(&out)["kept"], serde_json::json!(["submit"]));
    let (ok, out, _) = workflow(&url, &["--json", "runs", "graph", "pg-1"]);
    assert!(
        ok && json(&out)["mermaid"]
            .as_str()
            .unwrap()
            .contains("class decide completed")
    );
    for command in [&["--json", "definitions"][..], &["--json", "workers"]] {
        let (ok, out, err) = workflow(&url, command);
        assert!(ok, "{command:?}: {err}");
        json(&out);
    }
    ready_run(&engine, "pg-stray", "reports").await;
    let (ok, out, err) = workflow(&url, &["--json", "queues"]);
    assert!(ok, "{err}");
    assert_eq!(
        json(&out),
        serde_json::json!([{"queue": "reports", "ready": 1, "concurrency": null, "rate_per_sec": null, "burst": null}])
    );
    let (ok, out, _) = workflow(
        &url,
        &["--json", "runs", "purge", "--finished-before", "0s"],
    );
    assert!(ok);
    assert_eq!(json(&out)["purged"], 1);
}

/// A signal payload with a JSON Schema: the store keeps it with the definition.
#[derive(
    Clone,
    Debug,
    PartialEq,
    workflow_core::serde::Serialize,
    workflow_core::serde::Deserialize,
    workflow_core::schemars::JsonSchema,
)]
#[serde(crate = "workflow_core::serde")]
#[schemars(crate = "workflow_core::schemars")]
enum Verdict {
    Approve,
    Reject { reason: String },
}

#[derive(Clone)]
struct Claim;

#[workflow]
impl Claim {
    #[step]
    async fn file(&self, amount: u32) -> u32 {
        amount
    }
    #[step(after = file)]
    async fn judge(&self, amount: u32, verdict: Signal<Verdict>) -> String {
        format!("{amount}: {:?}", verdict.received())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_signal_refuses_a_payload_its_schema_does_not_match() {
    let (path, engine) = store_with_runs("schema").await;
    let run = engine.start_with_id(&Claim, "claim-1", 300).await.unwrap();
    let started = std::time::Instant::now();
    while run.status().await.unwrap() != RunStatus::Waiting {
        assert!(started.elapsed() < Duration::from_secs(30), "never parked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The schema is in the store, for any tool.
    let (ok, out, _) = workflow(&path, &["--json", "definitions"]);
    assert!(ok);
    let defs = json(&out);
    let claim = defs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["workflow"] == "Claim")
        .expect("Claim's definition");
    assert!(
        claim["signal_schemas"]["verdict"]["oneOf"].is_array(),
        "{claim}"
    );

    for bad in [r#""Maybe""#, r#"{"Reject": {}}"#, "42"] {
        let (ok, _, err) = workflow(
            &path,
            &["runs", "signal", "claim-1", "verdict", "--payload", bad],
        );
        assert!(!ok, "{bad} was accepted");
        assert!(
            err.contains("does not match the signal's schema"),
            "{bad}: {err}"
        );
    }
    let (ok, _, err) = workflow(
        &path,
        &[
            "runs",
            "signal",
            "claim-1",
            "verdict",
            "--payload",
            r#"{"Reject": {"reason": "late"}}"#,
        ],
    );
    assert!(ok, "{err}");
    let output = tokio::time::timeout(Duration::from_secs(30), run.wait())
        .await
        .expect("the run ends")
        .unwrap();
    assert_eq!(output, r#"300: Some(Reject { reason: "late" })"#);
}
