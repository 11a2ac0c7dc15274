//! `/runs/{id}/live`: server-sent events for the run page, one `update` (its status and each
//! step's outcome) whenever they change, until the run finishes.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream};
use serde_json::json;

use super::{run_view, Dashboard};
use crate::run_id::RunId;
use crate::store::effective_journal;

/// How often the stream reads the run again.
const POLL: Duration = Duration::from_millis(250);

/// What was last sent.
type Seen = Option<(String, BTreeMap<String, &'static str>)>;

pub(crate) async fn run(
    State(state): State<Arc<Dashboard>>,
    Path(id): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let run_id = RunId::from(id);
    let events = stream::unfold(
        (state, run_id, Seen::None, false),
        |(state, run_id, mut seen, done)| async move {
            if done {
                return None;
            }
            loop {
                let record = state.store.load_run(&run_id).await.ok().flatten()?;
                let journal = effective_journal(state.store.journal(&run_id).await.ok()?);
                let status = record.summary.status.as_str().to_owned();
                let outcomes = run_view::step_outcomes(&record, &journal);
                let finished = record.summary.status.is_finished();
                let now = Some((status.clone(), outcomes.clone()));
                if now != seen {
                    seen = now;
                    let data =
                        json!({ "status": status, "outcomes": outcomes, "finished": finished });
                    let event = Event::default().event("update").data(data.to_string());
                    return Some((Ok(event), (state, run_id, seen, finished)));
                }
                tokio::time::sleep(POLL).await;
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}
