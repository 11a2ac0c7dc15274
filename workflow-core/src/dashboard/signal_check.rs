//! A signal from an operator (the `workflow` command line, the dashboard's inbox), checked
//! before anything is stored against what the store knows of the run's definition: the signal must be one a step waits for, and the
//! payload must match the JSON Schema stored for its type (a payload type that derives
//! `JsonSchema`), or be JSON of the signal's type where the type is a primitive (`bool`,
//! integers, floats, `String`). Other types are decoded by the worker, which fails the run
//! naming the signal if the payload does not fit (it never strands it).

use crate::run_id::RunId;
use crate::store::{Store, StoreError, StoredDefinition};

/// The signals a definition's steps wait for, with their payload types as written.
fn signals(definition: &StoredDefinition) -> Vec<(String, String)> {
    definition
        .steps()
        .iter()
        .filter_map(|step| step.signal())
        .map(|(name, ty)| (name.to_owned(), ty.to_owned()))
        .collect()
}

/// Why `payload` is not a `ty`, for the primitive types; `None` when it fits or `ty` is not one.
fn misfit(ty: &str, payload: &serde_json::Value) -> Option<String> {
    let fits = match ty {
        "bool" => payload.is_boolean(),
        "u8" | "u16" | "u32" | "u64" | "usize" => payload.is_u64(),
        "i8" | "i16" | "i32" | "i64" | "isize" => payload.is_i64(),
        "f32" | "f64" => payload.is_number(),
        "String" | "&str" | "&'static str" => payload.is_string(),
        _ => return None,
    };
    (!fits).then(|| format!("expected a `{ty}`, got `{payload}`"))
}

/// Why `payload` does not match the JSON Schema `schema` (as stored); `None` when it does.
fn schema_misfit(schema: &str, payload: &serde_json::Value) -> Option<String> {
    let schema: serde_json::Value = serde_json::from_str(schema).ok()?;
    let validator = jsonschema::validator_for(&schema).ok()?;
    let errors: Vec<String> = validator
        .iter_errors(payload)
        .map(|error| match error.instance_path.to_string() {
            path if path.is_empty() => error.to_string(),
            path => format!("{path}: {error}"),
        })
        .collect();
    (!errors.is_empty()).then(|| {
        format!(
            "the payload does not match the signal's schema: {}",
            errors.join("; ")
        )
    })
}

/// Checks and stores signal `name` with `payload` (JSON text) for run `id`: refused (and
/// nothing stored) when no step of the run's workflow waits for it or the payload does not fit
/// its type.
pub async fn send_checked(
    store: &dyn Store,
    id: &str,
    name: &str,
    payload: &str,
) -> Result<(), StoreError> {
    let run_id = RunId::from(id);
    let refused =
        |detail: String| StoreError::Database(format!("signal `{name}` refused: {detail}"));
    let record = store
        .load_run(&run_id)
        .await?
        .ok_or_else(|| StoreError::UnknownRun(run_id.clone()))?;
    let summary = &record.summary;
    let value: serde_json::Value = serde_json::from_str(payload)
        .map_err(|e| refused(format!("the payload is not JSON: {e}")))?;
    if let Some(definition) = store
        .definition(&summary.workflow, summary.definition_hash)
        .await?
    {
        let known = signals(&definition);
        let Some((_, ty)) = known.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = known.iter().map(|(n, _)| n.as_str()).collect();
            return Err(refused(format!(
                "no step of `{}` waits for it (its signals: {})",
                summary.workflow,
                names.join(", ")
            )));
        };
        let schema = definition.signal_schemas.get(name);
        if let Some(why) = schema.map_or_else(|| misfit(ty, &value), |s| schema_misfit(s, &value)) {
            return Err(refused(why));
        }
    }
    let bytes = serde_json::to_vec(&value).map_err(|e| refused(e.to_string()))?;
    store.send_signal(&run_id, name, bytes).await
}
