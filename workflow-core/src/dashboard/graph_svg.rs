//! A run's graph as SVG, drawn from the stored definitions: steps in layers by their depth from
//! the start steps, each box filled by its outcome and labelled with it in text too (so the
//! outcome does not rest on colour alone). A child workflow step is a cluster box labelled with
//! the child workflow's name, holding the child's graph, drawn the same way (recursively).

use std::collections::BTreeMap;

use maud::{html, Markup, PreEscaped};

use super::run_graph::RunGraph;

const BOX_W: usize = 200;
const BOX_H: usize = 36;
const GAP_X: usize = 30;
const GAP_Y: usize = 40;
/// Under a cluster's step label: the line naming the child workflow.
const CLUSTER_LABEL: usize = 20;
/// Between a cluster's border and the child's graph.
const CLUSTER_PAD: usize = 10;
/// The outcome fills, inside the SVG so that it stands alone (`workflow runs graph --format svg`);
/// `unknown`: a child run per item, no one outcome.
const STYLE: &str = ".completed{fill:#d1fae5}.failed{fill:#fee2e2}.waiting{fill:#dbeafe}\
.compensated{fill:#e0e7ff}.pending{fill:#f3f4f6}.cancelled{fill:#fef3c7}.unknown{fill:#ffffff}";

/// The graph of a run, its children's nested in their steps' boxes.
pub(crate) fn render(graph: &RunGraph) -> Markup {
    let drawn = draw(graph, "");
    let (width, height) = (drawn.width, drawn.height);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(width) height=(height)
            viewBox=(format!("0 0 {width} {height}")) role="img"
            aria-label=(format!("graph of workflow {}", graph.definition.workflow)) {
            style { (PreEscaped(STYLE)) }
            (drawn.markup)
        }
    }
}

/// A graph drawn at the origin, and its size.
struct Drawn {
    markup: Markup,
    width: usize,
    height: usize,
}

/// Draws `graph`, naming its steps `{prefix}{step}` (`data-step`, `data-label`): a nested
/// child's steps are `{parent step}/{child step}`, so they never take the updates of the
/// parent's steps of the same name.
fn draw(graph: &RunGraph, prefix: &str) -> Drawn {
    let steps = graph.definition.steps();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    let nested: Vec<Option<Drawn>> = steps
        .iter()
        .map(|step| {
            let child = graph.children.get(&step.name)?;
            Some(draw(child, &format!("{prefix}{}/", step.name)))
        })
        .collect();
    let size = |i: usize| match &nested[i] {
        Some(child) => (
            BOX_W.max(child.width + 2 * CLUSTER_PAD),
            BOX_H + CLUSTER_LABEL + child.height + CLUSTER_PAD,
        ),
        None => (BOX_W, BOX_H),
    };
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
    // Each layer a row: its boxes left to right, as high as its highest box.
    let mut rows: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let mut x = vec![0usize; steps.len()];
    for i in 0..steps.len() {
        let (w, h) = size(i);
        let row = rows.entry(depth[i]).or_insert((GAP_X, 0));
        x[i] = row.0;
        row.0 += w + GAP_X;
        row.1 = row.1.max(h);
    }
    let mut row_y = BTreeMap::new();
    let mut height = GAP_Y / 2;
    for (layer, (_, h)) in &rows {
        row_y.insert(*layer, height);
        height += h + GAP_Y;
    }
    let height = height.max(BOX_H + GAP_Y) - GAP_Y / 2;
    let width = rows
        .values()
        .map(|(w, _)| *w)
        .max()
        .unwrap_or(BOX_W + 2 * GAP_X);
    let at = |i: usize| (x[i], row_y[&depth[i]]);
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
    let markup = html! {
        @for (u, i) in &edges {
            @let ((ux, uy), (ix, iy)) = (at(*u), at(*i));
            @let ((uw, uh), (iw, _)) = (size(*u), size(*i));
            line x1=(ux + uw / 2) y1=(uy + uh) x2=(ix + iw / 2) y2=(iy)
                stroke="#6b7280" stroke-width="1.5" {}
        }
        @for (i, step) in steps.iter().enumerate() {
            @let ((x, y), (w, h)) = (at(i), size(i));
            @let id = format!("{prefix}{}", step.name);
            @let outcome = graph.outcomes.as_ref()
                .map(|o| o.get(&step.name).copied().unwrap_or("pending"));
            rect data-step=(id) class=(outcome.unwrap_or("unknown")) x=(x) y=(y) width=(w)
                height=(h) rx="6" stroke="#374151" {}
            text data-label=(id) x=(x + w / 2) y=(y + BOX_H / 2 + 5) text-anchor="middle"
                font-size="13" {
                @match outcome {
                    Some(outcome) => (format!("{} ({outcome})", step.name)),
                    None => (step.name),
                }
            }
            @if let (Some(child), Some(child_graph)) = (&nested[i], graph.children.get(&step.name)) {
                text x=(x + w / 2) y=(y + BOX_H + CLUSTER_LABEL / 2) text-anchor="middle"
                    font-size="11" font-style="italic" {
                    "workflow " (child_graph.definition.workflow)
                }
                g transform=(format!("translate({},{})", x + (w - child.width) / 2,
                    y + BOX_H + CLUSTER_LABEL)) {
                    (child.markup)
                }
            }
        }
    };
    Drawn {
        markup,
        width,
        height,
    }
}
