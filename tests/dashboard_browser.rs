//! End to end, in Debian's headless Chromium (`tests/e2e/approve.mjs`, with playwright-core):
//! the runs page, a waiting run's page, its approval in the inbox, and the run's page showing
//! it completed without a reload; a screenshot of the run page goes to the target dir
//! (`target/tmp/dashboard-run.png`). `.ci/run` installs Chromium and the script's package and
//! sets `WORKFLOW_REQUIRE_BROWSER=1`, under which a missing browser fails the test; elsewhere it
//! is skipped with a note.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use temp_db::TempDb;

use workflow_core::dashboard::{serve, DashboardOptions};
use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};
use workflow_core::store::SqliteStore;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, workflow_core::schemars::JsonSchema)]
#[serde(crate = "workflow_core::serde")]
#[schemars(crate = "workflow_core::schemars")]
enum Decision {
    Approve,
    Reject,
}

#[derive(Clone)]
struct Expense;

#[workflow]
impl Expense {
    #[step]
    async fn submit(&self, cents: u32) -> u32 {
        cents
    }
    #[step(after = submit)]
    async fn decide(&self, cents: u32, decision: Signal<Decision>) -> String {
        format!("{cents}: {:?}", decision.received())
    }
}

/// The browser and the script's package, or why the test cannot run.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.exists() {
        return Err(format!("no Chromium at {}", chromium.display()));
    }
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    if !e2e.join("node_modules/playwright-core").exists() {
        return Err("tests/e2e has no node_modules (npm install --prefix tests/e2e)".into());
    }
    Ok((chromium, e2e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_approves_a_run_in_the_inbox_and_sees_it_finish_on_its_page() {
    let (chromium, e2e) = match browser() {
        Ok(found) => found,
        Err(why) if std::env::var("WORKFLOW_REQUIRE_BROWSER").as_deref() == Ok("1") => {
            panic!("WORKFLOW_REQUIRE_BROWSER=1 but {why}")
        }
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let path = TempDb::new("dashboard-browser");
    let engine = Engine::sqlite(&path).await.unwrap();
    engine.register(&Expense).await.unwrap();
    let run = engine
        .start_with_id(&Expense, "expense-77", 4200)
        .await
        .unwrap();
    while run.status().await.unwrap() != RunStatus::Waiting {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, store, DashboardOptions::default()));

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-run.png");
    let _ = std::fs::remove_file(&screenshot);
    let script = e2e.join("approve.mjs");
    let shot = screenshot.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .arg(base)
            .arg("expense-77")
            .arg(shot)
            .env("CHROMIUM", chromium)
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the browser script failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(run.wait().await.unwrap(), "4200: Some(Approve)");
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
}
