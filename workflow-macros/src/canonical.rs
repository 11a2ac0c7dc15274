//! The canonical text of a definition, whose hash is `Definition::hash`: everything that makes
//! a run's journal readable by a definition, and nothing else. A run resumes only under a
//! definition with its hash.
//!
//! In: the workflow's name, version and input type; per step, in declaration order, its name,
//! its upstream steps and join, its branch pattern, whether it is a `for_each` or a loop head
//! or an output step, its input types, output type, signal (name and payload type),
//! compensation and child workflow. Out: the tunables, whose new values apply to runs in flight: `retry`,
//! `backoff`, `timeout`, signal `deadline`, `concurrency`, `max_passes`,
//! `compensation_retry`.
//!
//! Types are compared as written (`u32`, `Vec<Order>`): changing a step's output type changes
//! the hash; a type alias that now means another type does not.

use quote::ToTokens;

use crate::expand::Cx;

impl Cx<'_> {
    /// The canonical text (see the module docs), one line per step.
    pub(crate) fn canonical_text(&self, name: &str, version: u32) -> String {
        let (model, graph) = (self.model, self.graph);
        let mut text = format!(
            "workflow {name} version {version} input {}\n",
            type_text(&self.input_ty())
        );
        for (i, step) in model.steps.iter().enumerate() {
            let upstream: Vec<&str> = graph.upstream[i]
                .iter()
                .map(|&u| model.steps[u].name.as_str())
                .collect();
            let inputs: Vec<String> = step.inputs.iter().map(type_text).collect();
            text.push_str(&format!(
                "step {} after [{}] join {:?}",
                step.name,
                upstream.join(", "),
                graph.join[i]
            ));
            if matches!(
                step.attr.after.as_ref().map(|a| &a.value),
                Some(crate::attr::After::First(_))
            ) {
                text.push_str(" first");
            }
            if let Some(branch) = &step.attr.branch {
                text.push_str(&format!(
                    " branch {}",
                    crate::expand::pattern_text(&branch.value)
                ));
            }
            if step.attr.for_each.is_some() {
                text.push_str(" for_each");
            }
            if step.attr.item_results.is_some() {
                text.push_str(" item_results");
            }
            if step.attr.max_passes.is_some() {
                text.push_str(" loop_head");
            }
            if graph.outputs.contains(&i) {
                text.push_str(" output");
            }
            text.push_str(&format!(
                " inputs ({}) returns {}",
                inputs.join(", "),
                type_text(&step.output)
            ));
            if let Some(signal) = &step.signal {
                text.push_str(&format!(
                    " signal {}: {}",
                    signal.name,
                    type_text(&signal.payload)
                ));
            }
            if let Some(compensation) = &step.attr.compensation {
                text.push_str(&format!(" compensation {}", compensation.value));
            }
            if let Some(child) = &step.attr.workflow {
                text.push_str(&format!(" workflow {}", type_text(&child.value)));
            }
            text.push('\n');
        }
        text
    }
}

/// A type as written, without the token printer's spaces: `Vec<Order>`, `&'static str`,
/// `dyn Fn(u32) -> u32`.
fn type_text(ty: &impl ToTokens) -> String {
    let spaced = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(spaced.len());
    let words: Vec<&str> = spaced.split_whitespace().collect();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            let prev = words[i - 1];
            let joins_words = |a: &str, b: &str| {
                let end = a
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
                let start = b
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
                end && start
            };
            if joins_words(prev, word) || *word == "->" || prev == "->" || prev == "," {
                out.push(' ');
            }
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use quote::quote;

    /// The canonical text of a workflow with every kind of line, as the hash sees it.
    #[test]
    fn canonical_text_of_a_definition() {
        let item = quote! {
            impl Shop {
                #[step(retry = 3, backoff = "10ms", timeout = "1s")]
                async fn take(&self, order: Order) -> Result<Vec<Item>, StepError> { todo!() }
                #[step(after = take, for_each, concurrency = 4)]
                async fn price(&self, item: Item) -> u64 { todo!() }
                #[saga_step(after = price, compensation = refund, compensation_retry = 5)]
                async fn charge(&self, prices: Vec<u64>) -> Receipt { todo!() }
                #[step(after = charge, deadline = "48h")]
                async fn confirm(&self, receipt: Receipt, ok: Signal<bool>) -> Option<&'static str> { todo!() }
                #[step(after = confirm, branch = Some(note))]
                async fn note(&self, note: &'static str) -> String { todo!() }
                #[step(after = confirm, branch = None)]
                async fn silent(&self) -> String { todo!() }
                async fn refund(&self, receipt: Receipt) {}
            }
        };
        let text = crate::canonical_text_of(quote!(version = 2), item);
        let expected = "\
workflow Shop version 2 input Order
step take after [] join Start inputs (Order) returns Vec<Item>
step price after [take] join Single for_each inputs (Item) returns u64
step charge after [price] join Single inputs (Vec<u64>) returns Receipt compensation refund
step confirm after [charge] join Single inputs (Receipt) returns Option<&'static str> signal ok: bool
step note after [confirm] join Single branch Some(note) output inputs (&'static str) returns String
step silent after [confirm] join Single branch None output inputs () returns String
";
        assert_eq!(text, expected);
    }
}
