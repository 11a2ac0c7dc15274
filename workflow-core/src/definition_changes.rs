//! What changed between two definitions of a workflow, read from their canonical texts
//! ([`crate::Definition::canonical`]): for a run refused under a new definition, the steps that
//! differ and how.

use crate::canonical_text::{parse, FIELDS};

/// One line per difference, e.g. "step `ship`: returns `u32` -> `String`", "step `audit` was
/// added", "input: `Order` -> `OrderV2`". Empty when the texts describe the same journal.
pub(crate) fn changes(old: &str, new: &str) -> Vec<String> {
    let (old_header, old_steps) = parse(old);
    let (new_header, new_steps) = parse(new);
    let by_name = |steps: Vec<crate::canonical_text::CanonicalStep>| {
        steps
            .into_iter()
            .map(|s| (s.name, s.fields))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (old_steps, new_steps) = (by_name(old_steps), by_name(new_steps));
    let mut out = Vec::new();
    for (field, before) in &old_header {
        let after = new_header.get(field).map(String::as_str).unwrap_or("");
        if *field != "version" && before != after {
            out.push(format!("{field}: `{before}` -> `{after}`"));
        }
    }
    for (name, before) in &old_steps {
        let Some(after) = new_steps.get(name) else {
            out.push(format!("step `{name}` was removed"));
            continue;
        };
        let differ: Vec<String> = FIELDS
            .iter()
            .filter_map(|field| {
                let (b, a) = (before.get(field), after.get(field));
                (b != a).then(|| match (b, a) {
                    (Some(b), Some(a)) => format!("{field} `{b}` -> `{a}`"),
                    (Some(b), None) if b.is_empty() => format!("no longer {field}"),
                    (Some(b), None) => format!("no {field} (was `{b}`)"),
                    (None, Some(a)) if a.is_empty() => format!("now {field}"),
                    (None, Some(a)) => format!("{field} `{a}` (was none)"),
                    (None, None) => unreachable!("equal"),
                })
            })
            .collect();
        if !differ.is_empty() {
            out.push(format!("step `{name}`: {}", differ.join(", ")));
        }
    }
    for name in new_steps.keys().filter(|n| !old_steps.contains_key(*n)) {
        out.push(format!("step `{name}` was added"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::changes;

    const OLD: &str = "\
workflow Shop version 1 input Order
step take after [] join Start inputs (Order) returns u32
step ship after [take] join Single output inputs (u32) returns u32
step audit after [take] join Single inputs (u32) returns ()
";

    #[test]
    fn a_changed_type_an_added_and_a_removed_step_are_named() {
        let new = "\
workflow Shop version 2 input Order
step take after [] join Start inputs (Order) returns u32
step ship after [take] join Single output inputs (u32) returns String
step notify after [take] join Single inputs (u32) returns ()
";
        assert_eq!(
            changes(OLD, new),
            [
                "step `audit` was removed",
                "step `ship`: returns `u32` -> `String`",
                "step `notify` was added",
            ]
        );
    }

    #[test]
    fn flags_and_inputs_are_compared_too() {
        let new = "\
workflow Shop version 1 input OrderV2
step take after [] join Start inputs (OrderV2) returns u32
step ship after [take] join Single inputs (u32) returns u32 compensation undo
step audit after [take] join Single inputs (u32) returns ()
";
        assert_eq!(
            changes(OLD, new),
            [
                "input: `Order` -> `OrderV2`",
                "step `ship`: no longer output, compensation `undo` (was none)",
                "step `take`: inputs `(Order)` -> `(OrderV2)`",
            ]
        );
    }

    #[test]
    fn a_join_that_becomes_a_race_is_named() {
        let old = "step pick after [a, b] join Any inputs (u32) returns u32\n";
        let new = "step pick after [a, b] join Any first inputs (u32) returns u32\n";
        assert_eq!(changes(old, new), ["step `pick`: now first"]);
    }

    #[test]
    fn the_same_text_has_no_changes() {
        assert!(changes(OLD, OLD).is_empty());
    }
}
