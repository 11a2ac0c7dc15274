//! The dashboard's pages. Every value from the store goes through maud's escaping.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;

use super::{graph_svg, run_view, signal_form, Dashboard, RunGraph};
use crate::run_id::RunId;
use crate::store::{effective_journal, RunFilter, RunRecord, RunStatus, RunSummary, StoreError};

/// A page that could not be shown: a status and a message, rendered (escaped) as a page.
pub(crate) struct PageError(pub StatusCode, pub String);

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        let status = match error {
            StoreError::UnknownRun(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        PageError(status, error.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = layout("error", html! { p.error { (self.1) } });
        (self.0, body).into_response()
    }
}

/// A run id as one path segment (child ids hold `/`).
pub(crate) fn run_path(run_id: &str) -> String {
    let encoded = percent_encoding::utf8_percent_encode(run_id, percent_encoding::NON_ALPHANUMERIC);
    format!("/runs/{encoded}")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#111827}\
nav{background:#111827;padding:.6rem 1rem}nav a{color:#f9fafb;margin-right:1rem;text-decoration:none}\
main{padding:1rem}table{border-collapse:collapse}td,th{border-bottom:1px solid #e5e7eb;padding:.3rem .6rem;text-align:left}\
.completed{fill:#d1fae5;background:#d1fae5}.failed{fill:#fee2e2;background:#fee2e2}\
.waiting{fill:#dbeafe;background:#dbeafe}.compensated{fill:#e0e7ff;background:#e0e7ff}\
.pending{fill:#f3f4f6;background:#f3f4f6}.cancelled{fill:#fef3c7;background:#fef3c7}\
pre{background:#f9fafb;padding:.5rem;white-space:pre-wrap}.error{color:#991b1b}form.inline{display:inline}";

/// The page around `body`.
pub(crate) fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · workflow" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                nav {
                    a href="/" { "Runs" }
                    a href="/inbox" { "Inbox" }
                    a href="/system" { "Workers, queues, definitions" }
                    a href="/audit" { "Audit" }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The filters of the runs page, as its form sends them (an empty field filters nothing).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunsQuery {
    status: Option<String>,
    workflow: Option<String>,
    after: Option<u64>,
    /// Created at or after: an RFC 3339 instant or an age ([`super::parse_time`]).
    since: Option<String>,
    /// Created before, as `since`.
    until: Option<String>,
}

/// A form field's text, unless it is absent or empty.
fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|text| !text.is_empty())
}

impl RunsQuery {
    /// The store's filter for one page, or what is wrong with a field.
    fn filter(&self) -> Result<RunFilter, String> {
        let time = |field: &Option<String>, label: &str| {
            given(field)
                .map(|text| super::parse_time(text).map_err(|why| format!("{label}: {why}")))
                .transpose()
        };
        let status = given(&self.status)
            .map(|text| RunStatus::parse(text).ok_or_else(|| format!("unknown status `{text}`")))
            .transpose()?;
        Ok(RunFilter {
            status,
            workflow: given(&self.workflow).map(str::to_owned),
            after: self.after,
            limit: 50,
            created_since: time(&self.since, "created since")?,
            created_before: time(&self.until, "created before")?,
            ..RunFilter::default()
        })
    }

    /// The link to the page after the cursor `after`, with the same filters.
    fn next_page(&self, after: u64) -> String {
        let mut link = format!("/?after={after}");
        for (key, field) in [
            ("status", &self.status),
            ("workflow", &self.workflow),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(text) = given(field) {
                let encoded =
                    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC);
                link.push_str(&format!("&{key}={encoded}"));
            }
        }
        link
    }
}

/// What the time fields of the runs page take.
const TIME_HINT: &str = "2h, 7d or 2026-11-28T09:00:00Z";

/// `/`: a page of runs, filtered, oldest first; a filter it cannot read is shown under the form
/// instead of the runs (400).
pub(crate) async fn runs(
    State(state): State<Arc<Dashboard>>,
    Query(query): Query<RunsQuery>,
) -> Result<(StatusCode, Markup), PageError> {
    let (code, listing) = match query.filter() {
        Ok(filter) => (StatusCode::OK, Ok(state.store.list(&filter).await?)),
        Err(why) => (StatusCode::BAD_REQUEST, Err(why)),
    };
    let body = html! {
        form method="get" action="/" {
            label { "status " select name="status" {
                option value="" { "any" }
                @for s in RunStatus::ALL {
                    option value=(s.as_str()) selected[given(&query.status) == Some(s.as_str())] { (s.as_str()) }
                }
            } }
            " "
            label { "workflow " input name="workflow" value=(given(&query.workflow).unwrap_or_default()); }
            " "
            label { "created since " input name="since" placeholder=(TIME_HINT) value=(given(&query.since).unwrap_or_default()); }
            " "
            label { "created before " input name="until" placeholder=(TIME_HINT) value=(given(&query.until).unwrap_or_default()); }
            " " button { "Filter" }
        }
        @match &listing {
            Err(why) => { p.error { (why) } }
            Ok(page) => {
                table {
                    tr { th { "run" } th { "workflow" } th { "status" } th { "created" } th { "waiting for" } }
                    @for run in &page.runs { (run_row(run)) }
                }
                @for error in &page.unreadable { p.error { "unreadable: " (error) } }
                @if let Some(after) = page.next { p { a href=(query.next_page(after)) { "next page" } } }
            }
        }
    };
    Ok((code, layout("Runs", body)))
}

fn run_row(run: &RunSummary) -> Markup {
    html! {
        tr {
            td { a href=(run_path(run.run_id.as_str())) { (run.run_id.as_str()) } }
            td { (run.workflow) }
            td class=(run.status.as_str()) { (run.status.as_str()) }
            td { (time(run.created_at)) }
            td { (run.waiting_for.clone().unwrap_or_default()) }
        }
    }
}

/// A stored time as RFC 3339, to the second, UTC (empty when the store has none).
fn time(at: Option<std::time::SystemTime>) -> String {
    at.map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_default()
}

/// The run, or a 404 page.
pub(crate) async fn load(state: &Dashboard, id: &str) -> Result<RunRecord, PageError> {
    let run_id = RunId::from(id);
    state
        .store
        .load_run(&run_id)
        .await?
        .ok_or_else(|| PageError(StatusCode::NOT_FOUND, format!("no run {id}")))
}

/// `/runs/{id}`: a run, its graph, its timeline, its output or error, and what can be done.
pub(crate) async fn run(
    State(state): State<Arc<Dashboard>>,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let record = load(&state, &id).await?;
    let summary = &record.summary;
    let run_id = &summary.run_id;
    let definition = state
        .store
        .definition(&summary.workflow, summary.definition_hash)
        .await?;
    let journal = effective_journal(state.store.journal(run_id).await?);
    let times = state.store.journal_times(run_id).await?;
    let graph = match &definition {
        Some(definition) => {
            Some(RunGraph::load(state.store.as_ref(), record.clone(), definition.clone()).await?)
        }
        None => None,
    };
    let timeline = run_view::timeline(definition.as_ref(), &record, &journal, &times);
    let path = run_path(run_id.as_str());
    let output = record
        .output
        .as_deref()
        .map(|o| String::from_utf8_lossy(o).into_owned());
    let waiting: Vec<String> = summary
        .waiting_for
        .as_deref()
        .map(|w| w.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default();
    Ok(layout(
        &format!("Run {run_id}"),
        html! {
            div #run data-live=(format!("{path}/live")) {
                p { "workflow " strong { (summary.workflow) } " (version " (summary.version) "), status "
                    strong #status class=(summary.status.as_str()) { (summary.status.as_str()) }
                    ", created " (time(summary.created_at))
                    @if summary.finished_at.is_some() { ", finished " (time(summary.finished_at)) } }
                @if let Some(graph) = &graph {
                    (graph_svg::render(graph))
                } @else {
                    p.error { "the store keeps no definition of this run's workflow: no graph, no actions" }
                }
                h2 { "Timeline" }
                table {
                    tr { th { "step" } th { "outcome" } th { "items" } th { "completed after" } th { "took" } }
                    @for row in &timeline {
                        tr {
                            td { (row.step) }
                            td class=(row.outcome) data-outcome=(row.step) { (row.outcome) }
                            td { (row.items.map(|n| n.to_string()).unwrap_or_default()) }
                            td { (row.completed_after.map(|d| format!("{} ms", d.as_millis())).unwrap_or_default()) }
                            td { (row.took.map(|d| format!("{} ms", d.as_millis())).unwrap_or_default()) }
                        }
                    }
                }
                @if let Some(output) = &output { h2 { "Output" } pre #output { (output) } }
                @if let Some(error) = &record.error { h2 { "Error" } pre.error { (error) } }
                @if definition.is_some() {
                    div #actions data-finished=(if summary.status.is_finished() { "1" } else { "0" }) {
                    h2 { "Actions" }
                    @if summary.status.is_finished() {
                        form.inline method="post" action=(format!("{path}/retry"))
                            onsubmit="return confirm('Retry this run from the chosen step?')" {
                            input type="hidden" name="csrf" value=(state.csrf);
                            "retry from " select name="from" {
                                @for row in &timeline { option value=(row.step) { (row.step) } }
                            }
                            " " button { "Retry" }
                        }
                    } @else {
                        form.inline method="post" action=(format!("{path}/cancel"))
                            onsubmit="return confirm('Cancel this run? Its completed saga steps are compensated.')" {
                            input type="hidden" name="csrf" value=(state.csrf);
                            button { "Cancel" }
                        }
                    }
                    @for name in &waiting {
                        (signal_form::form(&state.csrf, &path, name, definition.as_ref().and_then(|d| d.signal_schemas.get(name)).map(String::as_str)))
                    }
                    }
                }
            }
            script { (PreEscaped(LIVE_SCRIPT)) }
        },
    ))
}

/// Follows `/runs/{id}/live`: updates the status and each step's outcome in place.
const LIVE_SCRIPT: &str = "(function(){var run=document.getElementById('run');if(!run||!window.EventSource)return;\
var source=new EventSource(run.dataset.live);source.addEventListener('update',function(e){\
var u=JSON.parse(e.data);var s=document.getElementById('status');s.textContent=u.status;s.className=u.status;\
Object.keys(u.outcomes).forEach(function(step){var o=u.outcomes[step];\
document.querySelectorAll('[data-step]').forEach(function(n){if(n.dataset.step===step){n.setAttribute('class',o);}});\
document.querySelectorAll('[data-outcome]').forEach(function(n){if(n.dataset.outcome===step){n.textContent=o;n.className=o;}});\
document.querySelectorAll('[data-label]').forEach(function(n){if(n.dataset.label===step){n.textContent=step+' ('+o+')';}});});\
if(u.finished){source.close();var a=document.getElementById('actions');if(a&&a.dataset.finished!=='1'){a.textContent='The run finished: reload the page for its actions.';}}});})();";

/// `/runs/{id}/graph.svg`: the run's graph alone.
pub(crate) async fn graph(
    State(state): State<Arc<Dashboard>>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let record = load(&state, &id).await?;
    let summary = &record.summary;
    let definition = state
        .store
        .definition(&summary.workflow, summary.definition_hash)
        .await?
        .ok_or_else(|| PageError(StatusCode::NOT_FOUND, "no stored definition".into()))?;
    let graph = RunGraph::load(state.store.as_ref(), record, definition).await?;
    let svg = graph_svg::render(&graph).into_string();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// `/inbox`: the runs waiting for a signal, each with a form per signal it waits for.
pub(crate) async fn inbox(State(state): State<Arc<Dashboard>>) -> Result<Markup, PageError> {
    let mut waiting = Vec::new();
    for status in [RunStatus::Waiting, RunStatus::Claimed] {
        let filter = RunFilter {
            status: Some(status),
            limit: 500,
            ..RunFilter::default()
        };
        let page = state.store.list(&filter).await?;
        waiting.extend(page.runs.into_iter().filter(|r| r.waiting_for.is_some()));
    }
    let mut items = Vec::new();
    for run in &waiting {
        let schemas = state
            .store
            .definition(&run.workflow, run.definition_hash)
            .await?
            .map(|d| d.signal_schemas)
            .unwrap_or_default();
        let path = run_path(run.run_id.as_str());
        let forms: Vec<Markup> = run
            .waiting_for
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|name| {
                signal_form::form(
                    &state.csrf,
                    &path,
                    name,
                    schemas.get(name).map(String::as_str),
                )
            })
            .collect();
        items.push(html! {
            li {
                a href=(path) { (run.run_id.as_str()) } " · " (run.workflow) " waits for "
                strong { (run.waiting_for.clone().unwrap_or_default()) }
                @for form in &forms { (form) }
            }
        });
    }
    Ok(layout(
        "Inbox",
        html! {
            @if items.is_empty() { p { "No run waits for a person." } }
            ul { @for item in &items { (item) } }
        },
    ))
}

/// `/system`: workers, queues (limits and ready runs) and stored definitions.
pub(crate) async fn system(State(state): State<Arc<Dashboard>>) -> Result<Markup, PageError> {
    let workers = state.store.list_workers().await?;
    let queues = crate::store::queue_states(state.store.as_ref()).await?;
    let definitions = state.store.list_definitions().await?;
    Ok(layout(
        "Workers, queues, definitions",
        html! {
            h2 { "Workers" }
            ul { @for worker in &workers { li { (worker.as_str()) } } }
            h2 { "Queues" }
            table {
                tr { th { "queue" } th { "ready runs" } th { "concurrency" } th { "rate per second" } th { "burst" } }
                @for q in &queues {
                    @let limits = q.limits.as_ref();
                    tr { td { (q.queue) } td { (q.ready) }
                         td { (limits.and_then(|l| l.concurrency).map(|c| c.to_string()).unwrap_or_default()) }
                         td { (limits.and_then(|l| l.rate_per_sec).map(|r| r.to_string()).unwrap_or_default()) }
                         td { (limits.map(|l| l.burst.to_string()).unwrap_or_default()) } }
                }
            }
            h2 { "Definitions" }
            table {
                tr { th { "workflow" } th { "version" } th { "hash" } th { "steps" } th { "signals" } }
                @for d in &definitions {
                    tr { td { (d.workflow) } td { (d.version) } td { (format!("{:016x}", d.hash)) }
                         td { (d.steps().into_iter().map(|s| s.name).collect::<Vec<_>>().join(", ")) }
                         td { (d.steps().iter().filter_map(|s| s.signal().map(|(n, t)| format!("{n}: {t}"))).collect::<Vec<_>>().join(", ")) } }
                }
            }
        },
    ))
}

/// `/audit`: the latest operator actions.
pub(crate) async fn audit(State(state): State<Arc<Dashboard>>) -> Result<Markup, PageError> {
    let records = state.store.list_audit(200).await?;
    Ok(layout(
        "Audit",
        html! {
            table {
                tr { th { "when" } th { "who" } th { "action" } th { "run" } th { "detail" } }
                @for r in &records {
                    tr { td { (time(Some(r.at))) } td { (r.who) } td { (r.action) }
                         td { (r.run_id.as_ref().map(|id| id.to_string()).unwrap_or_default()) } td { (r.detail) } }
                }
            }
        },
    ))
}
