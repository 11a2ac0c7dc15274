//! The dashboard's write actions: cancel, retry from a step, send a signal. Each checks the
//! form's CSRF token, the write token when one is set, and that the store knows the run's
//! definition; each is written to the audit records; each redirects to the run's page.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::{load, run_path, PageError};
use super::{signal_form, Dashboard};
use crate::run_id::RunId;
use crate::store::{AuditRecord, RunRecord};

/// The cookie that carries the write token, once `/login?token=..` set it.
const TOKEN_COOKIE: &str = "wf_token";

/// Checks a write: its CSRF token and, when one is set, the write token.
fn check(
    state: &Dashboard,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), PageError> {
    if form.get("csrf") != Some(&state.csrf) {
        return Err(PageError(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong: reload the page and try again".into(),
        ));
    }
    let Some(token) = &state.options.write_token else {
        return Ok(());
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|cookies| {
            cookies
                .split(';')
                .filter_map(|c| c.trim().split_once('='))
                .find(|(name, _)| *name == TOKEN_COOKIE)
                .map(|(_, value)| value)
        });
    if bearer == Some(token.as_str()) || cookie == Some(token.as_str()) {
        Ok(())
    } else {
        Err(PageError(
            StatusCode::UNAUTHORIZED,
            "write actions need the dashboard's token (open /login?token=...)".into(),
        ))
    }
}

/// The run a write acts on, once the write is checked (see [`check`]) and if the store knows
/// the run's definition (no action touches a run of an unknown one).
async fn target(
    state: &Dashboard,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    id: &str,
) -> Result<RunRecord, PageError> {
    check(state, headers, form)?;
    let record = load(state, id).await?;
    let summary = &record.summary;
    let known = state
        .store
        .definition(&summary.workflow, summary.definition_hash)
        .await?
        .is_some();
    if !known {
        return Err(PageError(
            StatusCode::FORBIDDEN,
            format!(
                "the store keeps no definition of `{}` with this run's hash: no action on it",
                summary.workflow
            ),
        ));
    }
    Ok(record)
}

/// Who acted, as far as the request says.
fn who(headers: &HeaderMap) -> String {
    headers
        .get("x-forwarded-user")
        .and_then(|v| v.to_str().ok())
        .map_or_else(
            || "dashboard".to_owned(),
            |user| format!("dashboard: {user}"),
        )
}

async fn audit(
    state: &Dashboard,
    headers: &HeaderMap,
    action: &str,
    run_id: &RunId,
    detail: String,
) -> Result<(), PageError> {
    let record = AuditRecord {
        at: SystemTime::now(),
        who: who(headers),
        action: action.to_owned(),
        run_id: Some(run_id.clone()),
        detail,
    };
    Ok(state.store.record_audit(&record).await?)
}

/// `POST /runs/{id}/cancel`.
pub(crate) async fn cancel(
    State(state): State<Arc<Dashboard>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Redirect, PageError> {
    let record = target(&state, &headers, &form, &id).await?;
    let run_id = &record.summary.run_id;
    let status = state.store.request_cancel(run_id).await?;
    audit(
        &state,
        &headers,
        "cancel",
        run_id,
        format!("status was {}", status.as_str()),
    )
    .await?;
    Ok(Redirect::to(&run_path(&id)))
}

/// `POST /runs/{id}/retry` with `from`.
pub(crate) async fn retry(
    State(state): State<Arc<Dashboard>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Redirect, PageError> {
    let record = target(&state, &headers, &form, &id).await?;
    let run_id = &record.summary.run_id;
    let from = form.get("from").cloned().unwrap_or_default();
    let plan = crate::retry::retry_from(state.store.as_ref(), run_id, &from)
        .await
        .map_err(|e| PageError(StatusCode::CONFLICT, e.to_string()))?;
    let detail = format!("from `{from}`: runs again {}", plan.rerun.join(", "));
    audit(&state, &headers, "retry", run_id, detail).await?;
    Ok(Redirect::to(&run_path(&id)))
}

/// `POST /runs/{id}/signal/{name}`: the payload from the form, checked against the signal's
/// schema before it is stored.
pub(crate) async fn signal(
    State(state): State<Arc<Dashboard>>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Redirect, PageError> {
    let record = target(&state, &headers, &form, &id).await?;
    let summary = &record.summary;
    let definition = state
        .store
        .definition(&summary.workflow, summary.definition_hash)
        .await?;
    let schema = definition
        .as_ref()
        .and_then(|d| d.signal_schemas.get(&name))
        .map(String::as_str);
    let payload = signal_form::payload(schema, &form).map_err(|why| {
        PageError(
            StatusCode::BAD_REQUEST,
            format!("signal `{name}` refused: {why}"),
        )
    })?;
    let text = payload.to_string();
    super::send_signal_checked(state.store.as_ref(), &id, &name, &text)
        .await
        .map_err(|e| PageError(StatusCode::BAD_REQUEST, e.to_string()))?;
    audit(
        &state,
        &headers,
        "signal",
        &summary.run_id,
        format!("{name} = {text}"),
    )
    .await?;
    Ok(Redirect::to(&run_path(&id)))
}

/// `GET /login?token=..`: sets the write-token cookie when the token is right.
pub(crate) async fn login(
    State(state): State<Arc<Dashboard>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match (&state.options.write_token, query.get("token")) {
        (Some(token), Some(given)) if token == given => {
            let cookie = format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        (None, _) => Redirect::to("/").into_response(),
        _ => PageError(StatusCode::UNAUTHORIZED, "wrong token".into()).into_response(),
    }
}
