//! Branches: sibling `branch = PATTERN` steps of one upstream form one exhaustive `match`;
//! each step receives the pattern's bindings, and `_` is the explicit default branch.
//! The branches end the workflow, and only one of them runs, so no `output` is needed.
use workflow_core::prelude::*;

#[derive(Clone, Debug)]
enum Ticket {
    Bug { id: u32, title: String },
    Question(String),
    Spam,
    Feature(String),
}

struct Triage;

#[workflow]
impl Triage {
    #[step]
    async fn classify(&self, ticket: Ticket) -> Ticket {
        ticket
    }
    #[step(after = classify, branch = Ticket::Bug { id, title })]
    async fn file_bug(&self, id: u32, title: String) -> String {
        format!("bug #{id}: {title}")
    }
    #[step(after = classify, branch = Ticket::Question(q))]
    async fn answer(&self, q: String) -> String {
        format!("answer to {q}")
    }
    #[step(after = classify, branch = _)]
    async fn ignore(&self) -> String {
        "ignored".to_string()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let engine = Engine::in_memory();
    let bug = Ticket::Bug { id: 7, title: "crash".into() };
    assert_eq!(engine.run(&Triage, bug).await.unwrap(), "bug #7: crash");
    assert_eq!(engine.run(&Triage, Ticket::Question("why".into())).await.unwrap(), "answer to why");
    assert_eq!(engine.run(&Triage, Ticket::Spam).await.unwrap(), "ignored");
    assert_eq!(engine.run(&Triage, Ticket::Feature("x".into())).await.unwrap(), "ignored");
}
