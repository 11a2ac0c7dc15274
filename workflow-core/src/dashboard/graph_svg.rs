//! A run's graph as SVG, drawn from the stored definition: steps in layers by their depth from
//! the start steps, each box filled by its outcome and labelled with it in text too (so the
//! outcome does not rest on colour alone).

use std::collections::BTreeMap;

use maud::{html, Markup, PreEscaped};

use crate::store::StoredDefinition;

const BOX_W: usize = 200;
const BOX_H: usize = 36;
const GAP_X: usize = 30;
const GAP_Y: usize = 40;
/// The outcome fills, inside the SVG so that it stands alone (`workflow runs graph --format svg`).
const STYLE: &str = ".completed{fill:#d1fae5}.failed{fill:#fee2e2}.waiting{fill:#dbeafe}\
.compensated{fill:#e0e7ff}.pending{fill:#f3f4f6}.cancelled{fill:#fef3c7}";

/// The graph of `definition`, each step with its outcome from `outcomes` (else `pending`).
pub(crate) fn render(
    definition: &StoredDefinition,
    outcomes: &BTreeMap<String, &'static str>,
) -> Markup {
    let steps = definition.steps();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    // Depth: one more than the deepest upstream step, over edges that do not close a loop.
    let mut depth = vec![0usize; steps.len()];
    for _ in 0..steps.len() {
        for (i, step) in steps.iter().enumerate() {
            for up in step.after() {
                if let Some(u) = names.iter().position(|n| *n == up) {
                    if u < i {
                        depth[i] = depth[i].max(depth[u] + 1);
                    }
                }
            }
        }
    }
    let mut column = vec![0usize; steps.len()];
    let mut per_layer: BTreeMap<usize, usize> = BTreeMap::new();
    for i in 0..steps.len() {
        let slot = per_layer.entry(depth[i]).or_default();
        column[i] = *slot;
        *slot += 1;
    }
    let width = per_layer.values().max().copied().unwrap_or(1) * (BOX_W + GAP_X) + GAP_X;
    let height = (per_layer.len().max(1)) * (BOX_H + GAP_Y) + GAP_Y;
    let at = |i: usize| {
        (
            GAP_X + column[i] * (BOX_W + GAP_X),
            GAP_Y / 2 + depth[i] * (BOX_H + GAP_Y),
        )
    };
    let edges: Vec<(usize, usize)> = steps
        .iter()
        .enumerate()
        .flat_map(|(i, step)| {
            step.after()
                .into_iter()
                .filter_map(|up| names.iter().position(|n| *n == up))
                .map(move |u| (u, i))
                .collect::<Vec<_>>()
        })
        .collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(width) height=(height)
            viewBox=(format!("0 0 {width} {height}")) role="img"
            aria-label=(format!("graph of workflow {}", definition.workflow)) {
            style { (PreEscaped(STYLE)) }
            @for (u, i) in &edges {
                @let ((ux, uy), (ix, iy)) = (at(*u), at(*i));
                line x1=(ux + BOX_W / 2) y1=(uy + BOX_H) x2=(ix + BOX_W / 2) y2=(iy)
                    stroke="#6b7280" stroke-width="1.5" {}
            }
            @for (i, step) in steps.iter().enumerate() {
                @let (x, y) = at(i);
                @let outcome = outcomes.get(&step.name).copied().unwrap_or("pending");
                rect data-step=(step.name) class=(outcome) x=(x) y=(y) width=(BOX_W) height=(BOX_H)
                    rx="6" stroke="#374151" {}
                text data-label=(step.name) x=(x + BOX_W / 2) y=(y + BOX_H / 2 + 5)
                    text-anchor="middle" font-size="13" {
                    (format!("{} ({outcome})", step.name))
                }
            }
        }
    }
}
