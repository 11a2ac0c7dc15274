//! The web dashboard (feature `dashboard`): server-rendered pages over any [`Store`], live
//! updates over server-sent events, no JavaScript build. Mount [`router`] in your own axum app,
//! or run `workflow serve`.
//!
//! Pages: runs (filtered by status, workflow and creation time, paged from an index), a run
//! (its graph as SVG coloured and labelled by outcome, a timeline, output and error, cancel and
//! retry with confirmation), an approval inbox (runs waiting for a signal, each with a form
//! generated from the payload's JSON Schema), workers and queues (limits and ready runs),
//! definitions, and the audit log. Every action is written to the store's audit records (who,
//! what, when).
//!
//! Security: every value from a run is escaped (the templates escape by construction); every
//! form carries the dashboard's CSRF token; with [`DashboardOptions::write_token`] set (which
//! `workflow serve` requires when it binds beyond localhost) write actions need it too, as a
//! `Bearer` header or the `wf_token` cookie that `/login?token=..` sets; an action on a run
//! whose definition the store does not know is refused.
//!
//! ```no_run
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use workflow_core::dashboard::{router, DashboardOptions};
//! use workflow_core::store::SqliteStore;
//!
//! let store = Arc::new(SqliteStore::open("runs.db").await?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! workflow_core::dashboard::serve(listener, store, DashboardOptions::default()).await?;
//! // or mount `router(store, options)` in your own axum app.
//! # Ok(()) }
//! ```

mod actions;
mod graph_svg;
mod live;
mod pages;
mod run_graph;
mod run_view;
mod signal_check;
mod signal_form;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::store::Store;

pub use run_graph::RunGraph;
pub use run_view::{step_outcomes, timeline, TimelineRow};

/// A time as operators write it: an RFC 3339 instant (`2026-11-28T09:00:00Z`), or an age
/// (`90s`, `2h`, `7d`) counted back from now (an age older than the Unix epoch is the epoch).
/// The dashboard's and the `workflow` command line's time filters.
pub fn parse_time(text: &str) -> Result<std::time::SystemTime, String> {
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        return Ok(at);
    }
    match humantime::parse_duration(text) {
        Ok(age) => Ok(std::time::SystemTime::now()
            .checked_sub(age)
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH)),
        Err(_) => Err(format!(
            "`{text}` is neither an RFC 3339 time (2026-11-28T09:00:00Z) nor an age (2h, 7d)"
        )),
    }
}

/// A stored run's graph as SVG ([`RunGraph::load`]), as the dashboard's run page draws it:
/// each step filled by its outcome and labelled with it, each child workflow step a box
/// holding its child's graph.
pub fn graph_svg(graph: &RunGraph) -> String {
    graph_svg::render(graph).into_string()
}
pub use signal_check::send_checked as send_signal_checked;

/// How the dashboard is served.
#[derive(Debug, Clone, Default)]
pub struct DashboardOptions {
    /// When set, write actions need it (a `Bearer` header or the `wf_token` cookie).
    pub write_token: Option<String>,
}

/// What every handler shares.
pub(crate) struct Dashboard {
    pub store: Arc<dyn Store>,
    pub options: DashboardOptions,
    /// The token every form carries and every write checks: another site cannot read it.
    pub csrf: String,
}

/// Serves the dashboard on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    options: DashboardOptions,
) -> std::io::Result<()> {
    axum::serve(listener, router(store, options)).await
}

/// The dashboard's routes, to serve or to nest in an axum app.
pub fn router(store: Arc<dyn Store>, options: DashboardOptions) -> Router {
    let state = Arc::new(Dashboard {
        store,
        options,
        csrf: crate::run_id::RunId::generate().to_string(),
    });
    Router::new()
        .route("/", get(pages::runs))
        .route("/runs/{id}", get(pages::run))
        .route("/runs/{id}/graph.svg", get(pages::graph))
        .route("/runs/{id}/live", get(live::run))
        .route("/inbox", get(pages::inbox))
        .route("/system", get(pages::system))
        .route("/audit", get(pages::audit))
        .route("/login", get(actions::login))
        .route("/runs/{id}/cancel", post(actions::cancel))
        .route("/runs/{id}/retry", post(actions::retry))
        .route("/runs/{id}/signal/{name}", post(actions::signal))
        .with_state(state)
}
