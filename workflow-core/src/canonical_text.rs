//! Reading a definition's canonical text ([`crate::Definition::canonical`], also kept by stores
//! as [`crate::store::StoredDefinition`]) back into steps and their fields, for what tools show
//! without the workflow's code and for what changed between two definitions.

use std::collections::BTreeMap;

/// The fields of a canonical step line, in the order the encoder writes them.
pub(crate) const FIELDS: [&str; 13] = [
    "after",
    "join",
    "first",
    "branch",
    "for_each",
    "item_results",
    "loop_head",
    "output",
    "inputs",
    "returns",
    "signal",
    "compensation",
    "workflow",
];

/// One step of a canonical text: its name and its fields (`after`, `join`, `returns`,
/// `signal`, ...; a flag such as `output` has an empty value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalStep {
    /// The step's stable name.
    pub name: String,
    /// Each field present on the line, by name.
    pub fields: BTreeMap<&'static str, String>,
}

impl CanonicalStep {
    /// The steps it waits for, in order.
    pub fn after(&self) -> Vec<&str> {
        self.fields
            .get("after")
            .map(|a| a.trim_start_matches('[').trim_end_matches(']'))
            .map_or_else(Vec::new, |a| {
                a.split(", ").filter(|s| !s.is_empty()).collect()
            })
    }

    /// How it joins its upstream steps: `Start`, `Single`, `All` or `Any`.
    pub fn join(&self) -> &str {
        self.fields.get("join").map_or("Single", String::as_str)
    }

    /// The signal it waits for and the payload's type, as written.
    pub fn signal(&self) -> Option<(&str, &str)> {
        self.fields.get("signal")?.split_once(": ")
    }
}

/// The header's fields (`version`, `input`) and the steps, in order.
pub(crate) fn parse(text: &str) -> (BTreeMap<&'static str, String>, Vec<CanonicalStep>) {
    let mut header = BTreeMap::new();
    let mut steps = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("workflow ") {
            if let Some((_, tail)) = rest.split_once(" version ") {
                let (version, input) = tail.split_once(" input ").unwrap_or((tail, ""));
                header.insert("version", version.to_owned());
                header.insert("input", input.to_owned());
            }
        } else if let Some(rest) = line.strip_prefix("step ") {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            steps.push(CanonicalStep {
                name: name.to_owned(),
                fields: fields(tail),
            });
        }
    }
    (header, steps)
}

/// Splits `after [..] join X branch P output inputs (..) returns T ...` at its keywords.
fn fields(tail: &str) -> BTreeMap<&'static str, String> {
    let padded = format!(" {tail}");
    let mut marks: Vec<(usize, &'static str)> = FIELDS
        .iter()
        .filter_map(|field| {
            let bare = padded
                .ends_with(&format!(" {field}"))
                .then(|| padded.len() - field.len() - 1);
            padded
                .find(&format!(" {field} "))
                .or(bare)
                .map(|at| (at, *field))
        })
        .collect();
    marks.sort();
    let mut out = BTreeMap::new();
    for (i, (at, field)) in marks.iter().enumerate() {
        let start = (at + 1 + field.len()).min(padded.len());
        let end = marks.get(i + 1).map_or(padded.len(), |(next, _)| *next);
        out.insert(*field, padded[start..end.max(start)].trim().to_owned());
    }
    out
}
