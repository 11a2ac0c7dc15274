//! Mermaid and DOT renderings of a [`Definition`]. A child workflow step (`workflow = Child`)
//! is drawn with the child's graph nested in a subgraph (a DOT cluster) around it, the child's
//! nodes named `{step}__{child step}`.

use std::fmt::Write;

use crate::definition::{Definition, Join, StepDef};

impl Definition {
    /// The graph as a Mermaid flowchart: start steps hang off `input`, the output step feeds
    /// `output`, `any` joins are hexagons, `for_each` steps are subroutine boxes, branch edges
    /// carry their pattern and loop back edges are dotted with their bound; a child workflow
    /// step heads a subgraph holding the child's steps, which its dotted edges start.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n    __input([input])\n    __output([output])\n");
        self.mermaid_nodes("", 1, &mut out);
        self.for_each_edge("", &Ends::TOP, &mut |from, to, edge| {
            let _ = match edge {
                EdgeStyle::Plain => writeln!(out, "    {from} --> {to}"),
                EdgeStyle::Child => writeln!(out, "    {from} -.-> {to}"),
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

    fn mermaid_nodes(&self, prefix: &str, depth: usize, out: &mut String) {
        let indent = "    ".repeat(depth);
        for step in self.steps {
            let id = format!("{prefix}{}", step.name);
            let label = escape_mermaid(&node_label(step));
            let (open, close) = match (step.join, step.for_each) {
                (_, Some(_)) => ("[[", "]]"),
                (Join::Any, _) => ("{{", "}}"),
                _ if step.loop_head.is_some() => ("([", "])"),
                _ => ("[", "]"),
            };
            let Some(child) = step.child else {
                let _ = writeln!(out, "{indent}{id}{open}\"{label}\"{close}");
                continue;
            };
            let child = (child.definition)();
            let title = escape_mermaid(&format!("workflow {}", child.name));
            let _ = writeln!(out, "{indent}subgraph {id}__workflow [\"{title}\"]");
            let _ = writeln!(out, "{indent}    {id}{open}\"{label}\"{close}");
            child.mermaid_nodes(&format!("{id}__"), depth + 1, out);
            let _ = writeln!(out, "{indent}end");
        }
    }

    /// The graph in Graphviz DOT, with the same conventions as [`Definition::to_mermaid`]
    /// (a child workflow is a cluster).
    pub fn to_dot(&self) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n    rankdir=TB;\n    __input [shape=oval, label=\"input\"];\n    __output [shape=oval, label=\"output\"];\n",
            escape_dot(self.name)
        );
        self.dot_nodes("", 1, &mut out);
        self.for_each_edge("", &Ends::TOP, &mut |from, to, edge| {
            let _ = match edge {
                EdgeStyle::Plain => writeln!(out, "    {from} -> {to};"),
                EdgeStyle::Child => writeln!(out, "    {from} -> {to} [style=dotted];"),
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

    fn dot_nodes(&self, prefix: &str, depth: usize, out: &mut String) {
        let indent = "    ".repeat(depth);
        for step in self.steps {
            let id = format!("{prefix}{}", step.name);
            let shape = match (step.join, step.for_each) {
                (_, Some(_)) => "box3d",
                (Join::Any, _) => "hexagon",
                _ => "box",
            };
            let node = format!(
                "{id} [shape={shape}, label=\"{}\"];",
                escape_dot(&node_label(step))
            );
            let Some(child) = step.child else {
                let _ = writeln!(out, "{indent}{node}");
                continue;
            };
            let child = (child.definition)();
            let _ = writeln!(out, "{indent}subgraph cluster_{id} {{");
            let _ = writeln!(
                out,
                "{indent}    label=\"{}\";",
                escape_dot(&format!("workflow {}", child.name))
            );
            let _ = writeln!(out, "{indent}    style=rounded;");
            let _ = writeln!(out, "{indent}    {node}");
            child.dot_nodes(&format!("{id}__"), depth + 1, out);
            let _ = writeln!(out, "{indent}}}");
        }
    }

    /// Calls `emit(from, to, style)` for every edge of this graph (its nodes named with
    /// `prefix`), from `ends.input` to its start steps and from its output step to
    /// `ends.output`, then for the graphs of its child workflow steps.
    fn for_each_edge(
        &self,
        prefix: &str,
        ends: &Ends<'_>,
        emit: &mut dyn FnMut(&str, &str, EdgeStyle<'_>),
    ) {
        let id = |step: &StepDef| format!("{prefix}{}", step.name);
        for step in self.steps {
            if step.join == Join::Start {
                emit(ends.input, &id(step), ends.input_style);
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
                emit(&id(step), &id(target), style);
            }
            if let (true, Some(output)) = (step.is_output, ends.output) {
                emit(&id(step), output, EdgeStyle::Plain);
            }
        }
        for step in self.steps {
            if let Some(child) = step.child {
                let parent = id(step);
                let ends = Ends {
                    input: &parent,
                    input_style: EdgeStyle::Child,
                    output: None,
                };
                (child.definition)().for_each_edge(&format!("{parent}__"), &ends, emit);
            }
        }
    }
}

/// Where a graph's start steps hang from, and where its output step leads.
struct Ends<'a> {
    input: &'a str,
    input_style: EdgeStyle<'static>,
    output: Option<&'a str>,
}

impl Ends<'static> {
    const TOP: Ends<'static> = Ends {
        input: "__input",
        input_style: EdgeStyle::Plain,
        output: Some("__output"),
    };
}

#[derive(Clone, Copy)]
enum EdgeStyle<'a> {
    Plain,
    /// From a child workflow step into its child's start steps.
    Child,
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
    if let Some(child) = step.child {
        let _ = write!(label, " (workflow {})", (child.definition)().name);
    }
    label
}

fn escape_mermaid(text: &str) -> String {
    text.replace('"', "#quot;")
}

fn escape_dot(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
