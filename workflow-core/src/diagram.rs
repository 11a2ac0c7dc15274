//! Mermaid and DOT renderings of a [`Definition`].

use std::fmt::Write;

use crate::definition::{Definition, Join, StepDef};

impl Definition {
    /// The graph as a Mermaid flowchart: start steps hang off `input`, the output step feeds
    /// `output`, `any` joins are hexagons, `for_each` steps are subroutine boxes, branch edges
    /// carry their pattern and loop back edges are dotted with their bound.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n    __input([input])\n    __output([output])\n");
        for step in self.steps {
            let label = escape_mermaid(&node_label(step));
            let (open, close) = match (step.join, step.for_each) {
                (_, Some(_)) => ("[[", "]]"),
                (Join::Any, _) => ("{{", "}}"),
                _ if step.loop_head.is_some() => ("([", "])"),
                _ => ("[", "]"),
            };
            let _ = writeln!(out, "    {}{open}\"{label}\"{close}", step.name);
        }
        self.for_each_edge(|from, to, edge| {
            let _ = match edge {
                EdgeStyle::Plain => writeln!(out, "    {from} --> {to}"),
                EdgeStyle::Branch(pattern) => {
                    writeln!(out, "    {from} -->|\"{}\"| {to}", escape_mermaid(pattern))
                }
                EdgeStyle::Back(max) => {
                    writeln!(out, "    {from} -.->|\"loop, max {max}\"| {to}")
                }
            };
        });
        out
    }

    /// The graph in Graphviz DOT, with the same conventions as [`Definition::to_mermaid`].
    pub fn to_dot(&self) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n    rankdir=TB;\n    __input [shape=oval, label=\"input\"];\n    __output [shape=oval, label=\"output\"];\n",
            escape_dot(self.name)
        );
        for step in self.steps {
            let shape = match (step.join, step.for_each) {
                (_, Some(_)) => "box3d",
                (Join::Any, _) => "hexagon",
                _ => "box",
            };
            let _ = writeln!(
                out,
                "    {} [shape={shape}, label=\"{}\"];",
                step.name,
                escape_dot(&node_label(step))
            );
        }
        self.for_each_edge(|from, to, edge| {
            let _ = match edge {
                EdgeStyle::Plain => writeln!(out, "    {from} -> {to};"),
                EdgeStyle::Branch(pattern) => {
                    writeln!(
                        out,
                        "    {from} -> {to} [label=\"{}\"];",
                        escape_dot(pattern)
                    )
                }
                EdgeStyle::Back(max) => writeln!(
                    out,
                    "    {from} -> {to} [style=dashed, label=\"loop, max {max}\"];"
                ),
            };
        });
        out.push_str("}\n");
        out
    }

    /// Calls `emit(from, to, style)` for every edge, the `input`/`output` pseudo-nodes included.
    fn for_each_edge(&self, mut emit: impl FnMut(&str, &str, EdgeStyle<'_>)) {
        for step in self.steps {
            if step.join == Join::Start {
                emit("__input", step.name, EdgeStyle::Plain);
            }
            for edge in step.downstream {
                let target = &self.steps[edge.to as usize];
                let style = match (edge.back, target.branch) {
                    (true, _) => {
                        EdgeStyle::Back(target.loop_head.map_or(0, |head| head.max_passes))
                    }
                    (false, Some(pattern)) => EdgeStyle::Branch(pattern),
                    (false, None) => EdgeStyle::Plain,
                };
                emit(step.name, target.name, style);
            }
            if step.is_output {
                emit(step.name, "__output", EdgeStyle::Plain);
            }
        }
    }
}

enum EdgeStyle<'a> {
    Plain,
    Branch(&'a str),
    Back(u32),
}

fn node_label(step: &StepDef) -> String {
    let mut label = step.name.to_owned();
    match step.join {
        Join::All => label.push_str(" (all)"),
        Join::Any if step.race => label.push_str(" (first)"),
        Join::Any => label.push_str(" (any)"),
        Join::Start | Join::Single => {}
    }
    if let Some(for_each) = step.for_each {
        match for_each.concurrency {
            Some(n) => {
                let _ = write!(label, " (for each, {n} at a time)");
            }
            None => label.push_str(" (for each)"),
        }
    }
    if let Some(head) = step.loop_head {
        let _ = write!(label, " (loop head, max {})", head.max_passes);
    }
    label
}

fn escape_mermaid(text: &str) -> String {
    text.replace('"', "#quot;")
}

fn escape_dot(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
