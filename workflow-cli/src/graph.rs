//! `runs graph`: a stored run's graph, drawn from its definition as the store keeps it (no
//! workflow code needed), each step styled and labelled by what the run's journal says of it:
//! Mermaid or DOT here, SVG by the dashboard's renderer.

use std::fmt::Write;

use workflow_core::store::{JournalRecord, RunRecord, StoredDefinition};

/// The run's graph as a Mermaid flowchart with a class (and a text label) per step.
pub fn mermaid(
    definition: &StoredDefinition,
    run: &RunRecord,
    journal: &[JournalRecord],
) -> String {
    let class = workflow_core::dashboard::step_outcomes(run, journal);
    let mut out = String::from("flowchart TD\n");
    for node in definition.steps() {
        let state = class.get(&node.name).copied().unwrap_or("pending");
        let _ = writeln!(out, "    {}[\"{} ({state})\"]", node.name, node.name);
        let after = node.after();
        if after.is_empty() {
            let _ = writeln!(out, "    __input([input]) --> {}", node.name);
        }
        for upstream in &after {
            let label = match node.join() {
                "Any" => "-->|any|",
                _ => "-->",
            };
            let _ = writeln!(out, "    {upstream} {label} {}", node.name);
        }
        let _ = writeln!(out, "    class {} {state}", node.name);
    }
    out.push_str(concat!(
        "    classDef completed fill:#d1fae5,stroke:#059669\n",
        "    classDef failed fill:#fee2e2,stroke:#dc2626\n",
        "    classDef waiting fill:#dbeafe,stroke:#2563eb\n",
        "    classDef compensated fill:#e0e7ff,stroke:#4f46e5\n",
        "    classDef pending fill:#f3f4f6,stroke:#9ca3af,stroke-dasharray:4 3\n",
    ));
    out
}

/// The run's graph in Graphviz DOT, each step filled by its outcome and labelled with it.
pub fn dot(definition: &StoredDefinition, run: &RunRecord, journal: &[JournalRecord]) -> String {
    let class = workflow_core::dashboard::step_outcomes(run, journal);
    let mut out = format!(
        "digraph \"{}\" {{\n    rankdir=TB;\n",
        definition.workflow.replace('"', "\\\"")
    );
    for node in definition.steps() {
        let state = class.get(&node.name).copied().unwrap_or("pending");
        let fill = match state {
            "completed" => "#d1fae5",
            "failed" => "#fee2e2",
            "waiting" => "#dbeafe",
            "compensated" => "#e0e7ff",
            _ => "#f3f4f6",
        };
        let _ = writeln!(
            out,
            "    \"{0}\" [shape=box, style=filled, fillcolor=\"{fill}\", label=\"{0} ({state})\"];",
            node.name
        );
        for upstream in node.after() {
            let _ = writeln!(out, "    \"{upstream}\" -> \"{}\";", node.name);
        }
    }
    out.push_str("}\n");
    out
}
