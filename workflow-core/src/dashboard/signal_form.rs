//! A form for a signal, generated from its payload's JSON Schema: a choice for a boolean or an
//! enum of names, one input per field of an object of plain fields, a JSON box otherwise; and
//! the payload a submitted form makes.

use std::collections::HashMap;

use maud::{html, Markup};
use serde_json::{json, Value};

/// The form that sends signal `name` to the run at `path`.
pub(crate) fn form(csrf: &str, path: &str, name: &str, schema: Option<&str>) -> Markup {
    let schema: Option<Value> = schema.and_then(|s| serde_json::from_str(s).ok());
    html! {
        form method="post" action=(format!("{path}/signal/{name}")) data-signal=(name) {
            input type="hidden" name="csrf" value=(csrf);
            strong { (name) } " "
            @match schema.as_ref().map(shape) {
                Some(Shape::Bool) => {
                    select name="value" { option value="true" { "true" } option value="false" { "false" } }
                }
                Some(Shape::Choice(options)) => {
                    select name="value" { @for o in &options { option value=(o) { (o) } } }
                }
                Some(Shape::Fields(fields)) => {
                    @for (field, kind) in &fields {
                        label { (field) " " input name=(format!("field.{field}")) type=(if kind == "string" { "text" } else { "number" }); } " "
                    }
                }
                _ => { textarea name="json" rows="2" cols="40" placeholder="payload as JSON" {} }
            }
            " " button { "Send " (name) }
        }
    }
}

/// What a schema asks for, as far as a form can say.
enum Shape {
    Bool,
    /// One of these strings (an enum of unit variants).
    Choice(Vec<String>),
    /// An object of these string or number fields.
    Fields(Vec<(String, String)>),
    Other,
}

fn shape(schema: &Value) -> Shape {
    if schema["type"] == "boolean" {
        return Shape::Bool;
    }
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    if let Some(options) = strings(&schema["enum"]) {
        return Shape::Choice(options);
    }
    if let Some(variants) = schema["oneOf"].as_array() {
        let options: Option<Vec<String>> = variants
            .iter()
            .map(|v| {
                strings(&v["enum"])
                    .filter(|o| o.len() == 1)
                    .map(|mut o| o.remove(0))
            })
            .collect();
        if let Some(options) = options {
            return Shape::Choice(options);
        }
    }
    if schema["type"] == "object" {
        if let Some(properties) = schema["properties"].as_object() {
            let fields: Option<Vec<(String, String)>> = properties
                .iter()
                .map(|(name, p)| match p["type"].as_str() {
                    Some(kind @ ("string" | "integer" | "number")) => {
                        Some((name.clone(), kind.to_owned()))
                    }
                    _ => None,
                })
                .collect();
            if let Some(fields) = fields {
                return Shape::Fields(fields);
            }
        }
    }
    Shape::Other
}

/// The payload a submitted form makes (checked against the schema when it is sent).
pub(crate) fn payload(
    schema: Option<&str>,
    form: &HashMap<String, String>,
) -> Result<Value, String> {
    if let Some(text) = form.get("json") {
        return serde_json::from_str(text).map_err(|e| format!("the payload is not JSON: {e}"));
    }
    let schema: Value = schema
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    match shape(&schema) {
        Shape::Bool => Ok(json!(form.get("value").map(String::as_str) == Some("true"))),
        Shape::Choice(_) => Ok(json!(form.get("value").cloned().unwrap_or_default())),
        Shape::Fields(fields) => {
            let mut object = serde_json::Map::new();
            for (field, kind) in fields {
                let text = form
                    .get(&format!("field.{field}"))
                    .cloned()
                    .unwrap_or_default();
                let value = if kind == "string" {
                    json!(text)
                } else {
                    serde_json::from_str::<Value>(text.trim())
                        .map_err(|_| format!("`{field}` is not a number: `{text}`"))?
                };
                object.insert(field, value);
            }
            Ok(Value::Object(object))
        }
        Shape::Other => Err("no payload in the form".into()),
    }
}
