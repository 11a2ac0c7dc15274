//! The web dashboard (`workflow_core::dashboard`), through its router: pages, escaping of
//! every value from a run, CSRF and the write token, the approval inbox's schema-generated
//! forms, actions written to the audit records, live updates over server-sent events.

#[path = "common/temp_db.rs"]
mod temp_db;
use std::sync::Arc;
use std::time::Duration;
use temp_db::TempDb;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use workflow_core::dashboard::{router, DashboardOptions};
use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};
use workflow_core::store::{NewRun, QueueConfig, SqliteStore, Store};

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
    async fn submit(&self, note: String) -> String {
        note
    }
    #[step(after = submit)]
    async fn decide(&self, note: String, decision: Signal<Decision>) -> String {
        format!("{note}: {:?}", decision.received())
    }
}

fn temp_db(name: &str) -> TempDb {
    TempDb::new(&format!("dashboard-{name}"))
}

/// A store with a worker, and a dashboard over a second handle on it; the store's file lives
/// as long as the returned `TempDb`.
async fn setup(
    name: &str,
    options: DashboardOptions,
) -> (DurableEngine, Arc<SqliteStore>, axum::Router, TempDb) {
    let path = temp_db(name);
    let engine = Engine::sqlite(&path).await.unwrap();
    engine.register(&Expense).await.unwrap();
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let app = router(store.clone(), options);
    (engine, store, app, path)
}

async fn waiting(engine: &DurableEngine, id: &str, note: &str) -> RunHandle<Expense> {
    let run = engine
        .start_with_id(&Expense, id, note.to_owned())
        .await
        .unwrap();
    for _ in 0..1000 {
        if run.status().await.unwrap() == RunStatus::Waiting {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{id} never waited");
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn post(
    app: &axum::Router,
    uri: &str,
    form: &str,
    auth: Option<&str>,
) -> (StatusCode, String) {
    let mut request =
        Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(token) = auth {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(form.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The CSRF token the page's forms carry.
fn csrf(page: &str) -> String {
    let start = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[start..].split('"').next().unwrap().to_owned()
}

fn path(id: &str) -> String {
    format!("/runs/{}", id.replace('/', "%2F"))
}

/// A run of `workflow` that no worker takes (no worker has its definition).
fn unclaimed_run(run_id: &str, workflow: &str) -> NewRun {
    NewRun {
        run_id: run_id.into(),
        workflow: workflow.into(),
        version: 1,
        definition_hash: 7,
        queue: "default".into(),
        deadline_at: None,
        input: b"1".to_vec(),
        trace_context: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_answers_and_the_inbox_approves_a_run() {
    let (engine, store, app, _db) = setup("pages", DashboardOptions::default()).await;
    let run = waiting(&engine, "expense-1", "taxi").await;

    for page in [
        "/",
        "/?status=waiting",
        "/system",
        "/audit",
        "/inbox",
        "/runs/expense-1",
        "/runs/expense-1/graph.svg",
    ] {
        let (status, body) = get(&app, page).await;
        assert_eq!(status, StatusCode::OK, "{page}: {body}");
    }
    let (_, list) = get(&app, "/?status=waiting").await;
    assert!(list.contains("expense-1"), "{list}");
    let (_, done) = get(&app, "/?status=completed").await;
    assert!(!done.contains("expense-1"));

    // The inbox shows the run and a form generated from the signal's schema: a choice.
    let (_, inbox) = get(&app, "/inbox").await;
    assert!(
        inbox.contains("expense-1") && inbox.contains("decision"),
        "{inbox}"
    );
    assert!(inbox.contains(r#"<option value="Approve">"#), "{inbox}");
    let token = csrf(&inbox);

    // A payload the schema refuses is refused; nothing reaches the run.
    let (status, body) = post(
        &app,
        "/runs/expense-1/signal/decision",
        &format!("csrf={token}&json=%22Maybe%22"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("does not match the signal&#39;s schema")
            || body.contains("does not match the signal's schema"),
        "{body}"
    );

    let (status, _) = post(
        &app,
        "/runs/expense-1/signal/decision",
        &format!("csrf={token}&value=Approve"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let output = tokio::time::timeout(Duration::from_secs(30), run.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output, "taxi: Some(Approve)");

    let audit = store.list_audit(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].action.as_str(), audit[0].detail.as_str()),
        ("signal", "decision = \"Approve\"")
    );
    let (_, page) = get(&app, "/audit").await;
    assert!(page.contains("decision = &quot;Approve&quot;"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_page_filters_by_creation_time_and_the_system_page_counts_ready_runs() {
    let db = temp_db("time");
    let store = Arc::new(SqliteStore::open(&db).await.unwrap());
    // 51 runs no worker takes (the store knows no definition of them): one more than a page.
    for n in 0..51 {
        let run = unclaimed_run(&format!("order-{n:02}"), "Orders");
        store.create_run(&run).await.unwrap();
    }
    store
        .set_queue(&QueueConfig {
            queue: "payments".into(),
            concurrency: Some(4),
            rate_per_sec: None,
            burst: 10,
        })
        .await
        .unwrap();
    let app = router(store, DashboardOptions::default());

    for empty in ["/?since=2999-01-01T00:00:00Z", "/?until=1h"] {
        let (status, body) = get(&app, empty).await;
        assert_eq!(status, StatusCode::OK, "{empty}: {body}");
        assert!(!body.contains(">order-"), "{empty}: {body}");
    }
    let (status, recent) = get(&app, "/?since=1h&until=2999-01-01T00:00:00Z").await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    assert!(
        recent.contains(">order-00<") && recent.contains(">order-49<"),
        "{recent}"
    );
    assert!(!recent.contains(">order-50<"), "one page: {recent}");
    // The form keeps the filters, and so does the next page's link.
    assert!(
        recent.contains(r#"name="since" placeholder="2h, 7d or 2026-11-28T09:00:00Z" value="1h""#),
        "{recent}"
    );
    let start = recent
        .find(r#"<a href="/?after="#)
        .expect("a next page link")
        + 9;
    let next = recent[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(
        next.contains("&since=1h&until=2999%2D01%2D01T00%3A00%3A00Z"),
        "{next}"
    );
    let (_, rest) = get(&app, &next).await;
    assert!(
        rest.contains(">order-50<") && !rest.contains(">order-49<"),
        "{rest}"
    );

    // A time it cannot read is said on the page, escaped, with the form to correct it.
    let (status, bad) = get(&app, "/?since=%3Cb%3Esoon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(!bad.contains("<b>soon"), "unescaped: {bad}");
    assert!(
        bad.contains("created since: `&lt;b&gt;soon` is neither an RFC 3339 time"),
        "{bad}"
    );
    assert!(
        bad.contains(r#"value="&lt;b&gt;soon""#) && !bad.contains(">order-"),
        "{bad}"
    );

    // Queues: their limits, if any, and their ready runs.
    let (_, system) = get(&app, "/system").await;
    assert!(
        system.contains("<td>default</td><td>51</td><td></td><td></td><td></td>"),
        "{system}"
    );
    assert!(
        system.contains("<td>payments</td><td>0</td><td>4</td><td></td><td>10</td>"),
        "{system}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_from_a_run_is_escaped() {
    let (engine, _store, app, _db) = setup("escape", DashboardOptions::default()).await;
    let id = "<script>alert(1)</script>";
    let run = waiting(&engine, id, "<script>alert('output')</script>").await;
    run.signal(Expense::signals().decision, Decision::Reject)
        .await
        .unwrap();
    run.wait().await.unwrap();
    for page in [
        "/".to_owned(),
        path(id).replace('<', "%3C").replace('>', "%3E"),
    ] {
        let (status, body) = get(&app, &page).await;
        assert_eq!(status, StatusCode::OK, "{page}: {body}");
        assert!(
            !body.contains("<script>alert"),
            "unescaped on {page}: {body}"
        );
        assert!(body.contains("&lt;script&gt;alert"), "{page}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_csrf_token_and_the_write_token_and_a_known_definition() {
    let options = DashboardOptions {
        write_token: Some("s3cret".into()),
    };
    let (engine, store, app, _db) = setup("csrf", options).await;
    waiting(&engine, "expense-2", "hotel").await;
    let (_, page) = get(&app, "/runs/expense-2").await;
    let token = csrf(&page);

    let (status, _) = post(&app, "/runs/expense-2/cancel", "", Some("s3cret")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    let (status, _) = post(
        &app,
        "/runs/expense-2/cancel",
        "csrf=forged",
        Some("s3cret"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a forged CSRF token");
    let (status, _) = post(
        &app,
        "/runs/expense-2/cancel",
        &format!("csrf={token}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no write token");
    let (status, _) = post(
        &app,
        "/runs/expense-2/cancel",
        &format!("csrf={token}"),
        Some("wrong"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong write token");
    assert!(
        store.list_audit(10).await.unwrap().is_empty(),
        "refused actions leave no audit record"
    );

    let (status, _) = post(
        &app,
        "/runs/expense-2/cancel",
        &format!("csrf={token}"),
        Some("s3cret"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let handle = engine.handle::<Expense>("expense-2");
    tokio::time::timeout(Duration::from_secs(30), handle.wait())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(store.list_audit(10).await.unwrap()[0].action, "cancel");
    // The cancelled run's page offers a retry; it takes the run up again.
    let (_, page) = get(&app, "/runs/expense-2").await;
    assert!(
        page.contains("Retry") && !page.contains(">Cancel<"),
        "{page}"
    );
    let form = format!("csrf={token}&from=decide");
    let (status, _) = post(&app, "/runs/expense-2/retry", &form, Some("s3cret")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let audit = store.list_audit(10).await.unwrap();
    assert_eq!(
        (audit[0].action.as_str(), audit[0].detail.as_str()),
        ("retry", "from `decide`: runs again decide")
    );
    for _ in 0..1000 {
        if handle.status().await.unwrap() == RunStatus::Waiting {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        handle.status().await.unwrap(),
        RunStatus::Waiting,
        "waits for its decision again"
    );

    // /login sets the token as a cookie for the browser.
    let response = app
        .clone()
        .oneshot(
            Request::get("/login?token=s3cret")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("wf_token=s3cret") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    // A run whose definition the store does not know is not touched.
    store
        .create_run(&unclaimed_run("stranger-1", "Unknown"))
        .await
        .unwrap();
    let (status, body) = post(
        &app,
        "/runs/stranger-1/cancel",
        &format!("csrf={token}"),
        Some("s3cret"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("no definition"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_page_follows_the_run_live_over_server_sent_events() {
    let (engine, _store, app, _db) = setup("live", DashboardOptions::default()).await;
    let run = waiting(&engine, "expense-3", "train").await;
    let (_, page) = get(&app, "/runs/expense-3").await;
    assert!(
        page.contains(r#"data-live="/runs/expense%2D3/live""#),
        "{page}"
    );
    let response = app
        .clone()
        .oneshot(
            Request::get("/runs/expense-3/live")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let first = String::from_utf8_lossy(&first);
    assert!(
        first.contains("event: update") && first.contains(r#""status":"waiting""#),
        "{first}"
    );
    run.signal(Expense::signals().decision, Decision::Approve)
        .await
        .unwrap();
    // The next update says the run completed; then the stream ends.
    let mut seen = String::new();
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(30), body.frame())
        .await
        .unwrap()
    {
        if let Ok(data) = frame.unwrap().into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(
        seen.contains(r#""status":"completed""#) && seen.contains(r#""finished":true"#),
        "{seen}"
    );
}

#[derive(Clone, Default)]
struct Packing;

#[workflow]
impl Packing {
    #[step]
    async fn pick(&self, items: u32) -> u32 {
        items
    }
    #[step(after = pick)]
    async fn seal(&self, items: u32) -> String {
        format!("<b>{items} sealed</b>")
    }
}

#[derive(Clone)]
struct Dispatch;

#[workflow]
impl Dispatch {
    #[step]
    async fn accept(&self, items: u32) -> u32 {
        items
    }
    #[step(after = accept, workflow = Packing)]
    async fn pack(&self, items: u32) -> String;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_graph_nests_a_child_workflow_s_graph_in_its_step() {
    let path_db = temp_db("child-graph");
    let engine = Engine::sqlite(&path_db).await.unwrap();
    let store = Arc::new(SqliteStore::open(&path_db).await.unwrap());
    let app = router(store, DashboardOptions::default());
    let run = engine
        .start_with_id(&Dispatch, "dispatch-1", 4)
        .await
        .unwrap();
    assert_eq!(run.wait().await.unwrap(), "<b>4 sealed</b>");

    let (status, page) = get(&app, &path("dispatch-1")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, svg) = get(&app, &format!("{}/graph.svg", path("dispatch-1"))).await;
    assert_eq!(status, StatusCode::OK);
    for graph in [&page, &svg] {
        let svg = &graph[graph.find("<svg").unwrap()..graph.find("</svg>").unwrap()];
        // The child workflow step is a cluster naming the child workflow, around its steps,
        // each with the outcome of the child run.
        assert!(svg.contains(r#"data-step="pack""#), "{svg}");
        assert!(svg.contains("workflow Packing"), "{svg}");
        for step in ["pick", "seal"] {
            assert!(
                svg.contains(&format!(r#"data-step="pack/{step}""#)),
                "{svg}"
            );
            assert!(svg.contains(&format!("{step} (completed)")), "{svg}");
        }
        let cluster = svg.find(r#"data-step="pack""#).unwrap();
        let nested = svg.find(r#"data-step="pack/pick""#).unwrap();
        assert!(
            cluster < nested,
            "the child's steps are drawn inside the cluster"
        );
    }
    assert!(!page.contains("<b>4 sealed</b>"), "the output is escaped");
}
