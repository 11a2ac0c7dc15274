//! Mermaid and DOT renderings of workflow definitions: nodes, edges, and their labels for
//! branches, `any` joins, all-joins, `for_each` and loops.

use workflow_core::prelude::*;

#[derive(Clone, Debug)]
enum Route {
    Bug(String),
    Feature(String),
    Spam,
}

struct Support;

#[workflow(name = "support-desk")]
impl Support {
    #[step]
    async fn classify(&self, text: String) -> Route {
        if text.contains("crash") {
            Route::Bug(text)
        } else if text.contains("please") {
            Route::Feature(text)
        } else {
            Route::Spam
        }
    }
    #[step(after = classify, branch = Route::Bug(report))]
    async fn bug(&self, report: String) -> Vec<String> {
        report.split(' ').map(String::from).collect()
    }
    #[step(after = bug, for_each, concurrency = 2, name = "measure")]
    async fn research(&self, word: String) -> usize {
        word.len()
    }
    #[step(after = research)]
    async fn total(&self, lens: Vec<usize>) -> usize {
        lens.iter().sum()
    }
    #[step(after = any(total, revise), max_passes = 3)]
    async fn review(&self, n: usize) -> (usize, bool) {
        (n, n > 20)
    }
    #[step(after = review, branch = (n, false))]
    async fn revise(&self, n: usize) -> usize {
        n + 5
    }
    #[step(after = review, branch = (n, true))]
    async fn done(&self, n: usize) -> String {
        format!("bug total {n}")
    }
    #[step(after = classify, branch = r @ Route::Feature(_))]
    async fn feature(&self, r: Route) -> String {
        match r {
            Route::Feature(f) => f,
            other => format!("{other:?}"),
        }
    }
    #[step(after = classify, branch = _)]
    async fn spam(&self) -> String {
        "spam".into()
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).collect()
}

fn assert_has(text: &str, expected: &[&str]) {
    let lines = lines(text);
    for line in expected {
        assert!(lines.contains(line), "missing line `{line}` in:\n{text}");
    }
}

/// Edge lines: those containing an arrow.
fn edges<'a>(text: &'a str, arrow: &str) -> Vec<&'a str> {
    lines(text)
        .into_iter()
        .filter(|l| l.contains(arrow))
        .collect()
}

#[test]
fn mermaid_has_every_node_edge_and_label() {
    let m = Support::definition().to_mermaid();
    assert_eq!(m.lines().next(), Some("flowchart TD"));
    assert_has(
        &m,
        &[
            // nodes, with shapes for `for_each` (subroutine) and `any` (hexagon)
            r#"classify["classify"]"#,
            r#"measure[["measure (for each, 2 at a time)"]]"#,
            r#"review{{"review (any) (loop head, max 3)"}}"#,
            r#"total["total"]"#,
        ],
    );
    let expected_edges = [
        "__input --> classify",
        r#"classify -->|"Route::Bug(report)"| bug"#,
        r#"classify -->|"r @ Route::Feature(_)"| feature"#,
        r#"classify -->|"_"| spam"#,
        "bug --> measure",
        "measure --> total",
        "total --> review",
        r#"review -->|"(n, false)"| revise"#,
        r#"review -->|"(n, true)"| done"#,
        r#"revise -.->|"loop, max 3"| review"#,
        "done --> __output",
        "feature --> __output",
        "spam --> __output",
    ];
    assert_has(&m, &expected_edges);
    let mut found = edges(&m, "-");
    found.retain(|l| l.contains("->"));
    assert_eq!(found.len(), expected_edges.len(), "no other edges:\n{m}");
    assert!(
        !m.contains("research"),
        "the step's `name` replaces the method name:\n{m}"
    );
}

#[test]
fn dot_has_every_node_edge_and_label() {
    let d = Support::definition().to_dot();
    assert_eq!(d.lines().next(), Some(r#"digraph "support-desk" {"#));
    assert_eq!(d.trim_end().lines().last(), Some("}"));
    assert_has(
        &d,
        &[
            r#"classify [shape=box, label="classify"];"#,
            r#"measure [shape=box3d, label="measure (for each, 2 at a time)"];"#,
            r#"review [shape=hexagon, label="review (any) (loop head, max 3)"];"#,
        ],
    );
    let expected_edges = [
        "__input -> classify;",
        r#"classify -> bug [label="Route::Bug(report)"];"#,
        r#"classify -> feature [label="r @ Route::Feature(_)"];"#,
        r#"classify -> spam [label="_"];"#,
        "bug -> measure;",
        "measure -> total;",
        "total -> review;",
        r#"review -> revise [label="(n, false)"];"#,
        r#"review -> done [label="(n, true)"];"#,
        r#"revise -> review [style=dashed, label="loop, max 3"];"#,
        "done -> __output;",
        "feature -> __output;",
        "spam -> __output;",
    ];
    assert_has(&d, &expected_edges);
    assert_eq!(
        edges(&d, " -> ").len(),
        expected_edges.len(),
        "no other edges:\n{d}"
    );
}

/// All-joins, several start steps and an explicit output step.
struct Joins;

#[workflow]
impl Joins {
    #[step]
    async fn left(&self, x: u32) -> u32 {
        x
    }
    #[step]
    async fn right(&self, x: u32) -> String {
        x.to_string()
    }
    #[step(after = [right, left])]
    async fn both(&self, r: String, l: u32) -> String {
        format!("{r}{l}")
    }
    #[step(after = both, output)]
    async fn result(&self, s: String) -> String {
        s
    }
    #[step(after = both)]
    async fn audit(&self, s: String) -> usize {
        s.len()
    }
}

#[test]
fn all_join_and_output_marker_render() {
    let def = Joins::definition();
    let m = def.to_mermaid();
    assert_has(
        &m,
        &[
            "__input --> left",
            "__input --> right",
            r#"both["both (all)"]"#,
            "left --> both",
            "right --> both",
            "both --> result",
            "both --> audit",
            "result --> __output",
        ],
    );
    assert!(
        !m.contains("audit --> __output"),
        "only the `output` step feeds the output:\n{m}"
    );
    let d = def.to_dot();
    assert_has(
        &d,
        &[
            r#"digraph "Joins" {"#,
            r#"both [shape=box, label="both (all)"];"#,
            "right -> both;",
            "left -> both;",
            "result -> __output;",
        ],
    );
    assert!(!d.contains("audit -> __output"), "{d}");
}

#[test]
fn definition_is_static_and_stable() {
    let def = Support::definition();
    assert!(std::ptr::eq(def, Support::definition()));
    assert_eq!(def.name, "support-desk");
    assert_eq!(def.version, 1);
    assert_eq!(def.hash, Support::definition().hash);
    assert_ne!(def.hash, Joins::definition().hash);
    let names: Vec<&str> = def.steps.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        ["classify", "bug", "measure", "total", "review", "revise", "done", "feature", "spam"]
    );
    assert_eq!(def.step("review").unwrap().loop_head.unwrap().max_passes, 3);
    assert_eq!(
        def.step("measure").unwrap().for_each.unwrap().concurrency,
        Some(2)
    );
    assert_eq!(def.step("spam").unwrap().branch, Some("_"));
}

// ---------------------------------------------------------------------------------------------
// Composed workflows: a child workflow step is drawn with the child's graph nested around it.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Translate;

#[workflow]
impl Translate {
    #[step]
    async fn detect(&self, parts: Vec<String>) -> (String, String) {
        ("en".to_owned(), parts.join(" "))
    }
    #[step(after = detect)]
    async fn render(&self, detected: (String, String)) -> String {
        detected.1
    }
}

#[derive(Default)]
struct Summarize;

#[workflow]
impl Summarize {
    #[step]
    async fn chunk(&self, text: String) -> Vec<String> {
        vec![text]
    }
    #[step(after = chunk, for_each)]
    async fn condense(&self, chunk: String) -> String {
        chunk
    }
    #[step(after = condense, workflow = Translate)]
    async fn translate(&self, parts: Vec<String>) -> String;
}

struct Digest;

#[workflow]
impl Digest {
    #[step]
    async fn fetch(&self, urls: Vec<String>) -> Vec<String> {
        urls
    }
    #[step(after = fetch, for_each, workflow = Summarize)]
    async fn summarize(&self, page: String) -> String;

    #[step(after = summarize)]
    async fn publish(&self, summaries: Vec<String>) -> usize {
        summaries.len()
    }
}

#[test]
fn a_composed_workflow_draws_its_children_as_nested_subgraphs_in_mermaid() {
    expect_test::expect_file!["snapshots/composed.mmd"]
        .assert_eq(&Digest::definition().to_mermaid());
}

#[test]
fn a_composed_workflow_draws_its_children_as_nested_clusters_in_dot() {
    expect_test::expect_file!["snapshots/composed.dot"].assert_eq(&Digest::definition().to_dot());
}

#[tokio::test]
async fn a_composed_runs_diagram_colours_the_childs_steps_by_outcome() {
    let finished = Engine::in_memory()
        .run_with(&Digest, vec!["a".to_owned()], RunOptions::default())
        .await;
    assert_eq!(finished.result.unwrap(), 1);
    let mermaid = finished.history.to_mermaid(Digest::definition());
    assert_has(
        &mermaid,
        &[
            "class summarize completed",
            "class summarize__condense completed",
            "class summarize__translate__render completed",
        ],
    );
}
