//! A support-ticket triage agent.
//!
//! Run with `cargo run --example triage`.
//!
//! Every incoming ticket is parsed and classified, then routed by its category:
//!
//! - **Bug**: three research steps run concurrently (server logs, the issue tracker, the
//!   component's owner), an all-join (`after = [..]`) waits for all three, and a diagnosis
//!   goes into the reply.
//! - **Question**: the FAQ and the docs search race; an any-join (`after = any(..)`) takes
//!   whichever answers first.
//! - Bugs and questions then share a bounded review loop: a draft reply is reviewed, revised
//!   and reviewed again (`max_iterations = 3`) until the reviewer approves it.
//! - **Feature** requests go to the backlog; **Spam** (a unit variant) is closed.
//!
//! The branches of `classify` form one `match` over `Category`, so forgetting a category is a
//! compile error. The terminal steps (`send_reply`, `add_to_backlog`, `close_as_spam`) are on
//! mutually exclusive branches, so exactly one of them produces the workflow's output.
//!
//! Latency is simulated with `tokio::time::sleep`; the printed timings show that the research
//! steps overlap (the run takes about as long as the slowest of them, not their sum).

use std::fmt;
use std::time::{Duration, Instant};

use workflow_core::prelude::*;

// ---------------------------------------------------------------------------------------------
// Domain types
// ---------------------------------------------------------------------------------------------

/// A parsed support ticket.
#[derive(Clone, Debug)]
struct Ticket {
    id: u32,
    customer: String,
    subject: String,
    body: String,
}

impl Ticket {
    fn mentions(&self, words: &[&str]) -> bool {
        let text = format!("{} {}", self.subject, self.body).to_lowercase();
        words.iter().any(|w| text.contains(w))
    }
}

/// What `classify` decided. Each variant is one branch of the graph.
#[derive(Clone, Debug)]
enum Category {
    Bug(Ticket),
    Feature(Ticket),
    Question(Ticket),
    Spam,
}

/// What the research steps found out about a bug.
#[derive(Clone, Debug)]
struct Finding {
    source: &'static str,
    note: String,
}

/// An answer to the customer's problem, from research or from a knowledge source.
#[derive(Clone, Debug)]
struct Answer {
    ticket: Ticket,
    source: &'static str,
    text: String,
}

/// A reply being written; `revision` counts the rounds of review feedback it went through.
#[derive(Clone, Debug)]
struct Draft {
    ticket: Ticket,
    body: String,
    revision: u32,
}

/// The reviewer's decision on a draft.
#[derive(Clone, Debug)]
enum Verdict {
    Approved(Draft),
    ChangesRequested(Draft, Vec<&'static str>),
}

/// How a ticket was resolved: the workflow's output.
#[derive(Debug)]
enum Resolution {
    Replied {
        ticket: u32,
        to: String,
        body: String,
        revisions: u32,
    },
    Backlogged {
        ticket: u32,
        label: &'static str,
    },
    ClosedAsSpam,
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resolution::Replied {
                ticket,
                to,
                body,
                revisions,
            } => {
                write!(
                    f,
                    "replied to {to} on #{ticket} after {revisions} revision(s):"
                )?;
                for line in body.lines() {
                    write!(f, "\n             | {line}")?;
                }
                Ok(())
            }
            Resolution::Backlogged { ticket, label } => {
                write!(f, "#{ticket} added to the product backlog as `{label}`")
            }
            Resolution::ClosedAsSpam => write!(f, "closed as spam, no reply sent"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The workflow
// ---------------------------------------------------------------------------------------------

/// The triage agent. Its fields are the "services" the steps talk to.
struct Triage {
    /// Component keyword -> the engineer who owns it.
    owners: Vec<(&'static str, &'static str)>,
    /// Topic keyword -> canned FAQ answer.
    faq: Vec<(&'static str, &'static str)>,
}

#[workflow(name = "ticket-triage")]
impl Triage {
    /// Start step: parses a raw e-mail (`From:` and `Subject:` headers, a blank line, a body).
    #[step]
    async fn parse(&self, raw: String) -> Result<Ticket, StepError> {
        let (headers, body) = raw
            .split_once("\n\n")
            .ok_or_else(|| StepError::msg("ticket has no blank line after its headers"))?;
        let header = |name: &str| {
            headers
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .ok_or_else(|| StepError::msg(format!("ticket has no `{name}` header")))
        };
        Ok(Ticket {
            id: header("Ticket:")?
                .parse()
                .map_err(|_| StepError::msg("`Ticket:` is not a number"))?,
            customer: header("From:")?,
            subject: header("Subject:")?,
            body: body.trim().to_string(),
        })
    }

    /// Decides the category; a real agent would ask a model here.
    #[step(after = parse)]
    async fn classify(&self, ticket: Ticket) -> Category {
        if ticket.mentions(&["crypto", "winner", "click here"]) {
            Category::Spam
        } else if ticket.mentions(&["crash", "error", "broken", "fails"]) {
            Category::Bug(ticket)
        } else if ticket.mentions(&["would be nice", "please add", "feature"]) {
            Category::Feature(ticket)
        } else {
            Category::Question(ticket)
        }
    }

    // --- Bug branch: a static fan-out to three concurrent research steps ----------------------

    /// Entry of the bug branch: binds the ticket out of `Category::Bug`.
    #[step(after = classify, branch = Category::Bug(ticket))]
    async fn open_bug(&self, ticket: Ticket) -> Ticket {
        ticket
    }

    /// Greps the server logs (slow-ish).
    #[step(after = open_bug)]
    async fn search_logs(&self, ticket: Ticket) -> Finding {
        tokio::time::sleep(Duration::from_millis(40)).await;
        Finding {
            source: "logs",
            note: format!(
                "{} matching stack traces since the last deploy",
                ticket.id % 7 + 2
            ),
        }
    }

    /// Looks for a known issue in the tracker.
    #[step(after = open_bug)]
    async fn search_issues(&self, ticket: Ticket) -> Finding {
        tokio::time::sleep(Duration::from_millis(70)).await;
        let note = if ticket.mentions(&["export"]) {
            "known issue #4312, fix ships in 2.8.1".to_string()
        } else {
            "no known issue; opened a new one".to_string()
        };
        Finding {
            source: "issues",
            note,
        }
    }

    /// Pings the component's owner (a human, so the slowest).
    #[step(after = open_bug)]
    async fn ask_owner(&self, ticket: Ticket) -> Finding {
        tokio::time::sleep(Duration::from_millis(120)).await;
        let owner = self
            .owners
            .iter()
            .find(|(component, _)| ticket.mentions(&[component]))
            .map_or("the on-call engineer", |(_, owner)| owner);
        Finding {
            source: "owner",
            note: format!("{owner} suggests the workaround: export as PNG, then convert"),
        }
    }

    /// All-join: waits for the ticket and all three findings, received in `after` order.
    #[step(after = [open_bug, search_logs, search_issues, ask_owner])]
    async fn diagnose(
        &self,
        ticket: Ticket,
        logs: Finding,
        issues: Finding,
        owner: Finding,
    ) -> Answer {
        let findings: Vec<String> = [logs, issues, owner]
            .iter()
            .map(|f| format!("- {}: {}", f.source, f.note))
            .collect();
        let text = format!(
            "Here is what we found on ticket #{}:\n{}",
            ticket.id,
            findings.join("\n")
        );
        Answer {
            ticket,
            source: "research",
            text,
        }
    }

    // --- Question branch: two knowledge sources race --------------------------------------------

    /// Entry of the question branch.
    #[step(after = classify, branch = Category::Question(ticket))]
    async fn open_question(&self, ticket: Ticket) -> Ticket {
        ticket
    }

    /// The FAQ is fast when it has an article on the topic, slow (full-text search) otherwise.
    #[step(after = open_question)]
    async fn search_faq(&self, ticket: Ticket) -> Answer {
        let hit = self.faq.iter().find(|(topic, _)| ticket.mentions(&[topic]));
        let latency = if hit.is_some() { 15 } else { 150 };
        tokio::time::sleep(Duration::from_millis(latency)).await;
        let text = hit
            .map_or("see the user guide", |(_, answer)| answer)
            .to_string();
        Answer {
            ticket,
            source: "faq",
            text,
        }
    }

    /// The docs search always takes about the same time.
    #[step(after = open_question)]
    async fn search_docs(&self, ticket: Ticket) -> Answer {
        tokio::time::sleep(Duration::from_millis(60)).await;
        let text = format!("the docs section on \"{}\" covers this", ticket.subject);
        Answer {
            ticket,
            source: "docs",
            text,
        }
    }

    /// Any-join: runs once, with the first answer to arrive; the slower one is ignored.
    #[step(after = any(search_faq, search_docs))]
    async fn first_answer(&self, answer: Answer) -> Answer {
        answer
    }

    // --- Shared by bugs and questions: draft, then a bounded review loop ------------------------

    /// Any-join over two exclusive branches: whichever of them ran feeds the draft.
    #[step(after = any(diagnose, first_answer))]
    async fn draft_reply(&self, answer: Answer) -> Draft {
        // First drafts are terse; the review loop fixes them up. Research-based drafts
        // already name the ticket, knowledge-base answers do not.
        let body = match answer.source {
            "research" => answer.text,
            source => format!("{} (source: {source})", answer.text),
        };
        Draft {
            body,
            ticket: answer.ticket,
            revision: 0,
        }
    }

    /// Loop head: reviews the first draft, then every revision, at most 3 times in all.
    #[step(after = any(draft_reply, revise), max_iterations = 3)]
    async fn review(&self, draft: Draft) -> Verdict {
        let mut notes = Vec::new();
        if !draft.body.starts_with("Hi ") {
            notes.push("greet the customer");
        }
        if !draft.body.contains(&format!("#{}", draft.ticket.id)) {
            notes.push("reference the ticket number");
        }
        if notes.is_empty() {
            Verdict::Approved(draft)
        } else {
            Verdict::ChangesRequested(draft, notes)
        }
    }

    /// Back edge of the loop: addresses the first review note and sends the draft back.
    #[step(after = review, branch = Verdict::ChangesRequested(draft, notes))]
    async fn revise(&self, draft: Draft, notes: Vec<&'static str>) -> Draft {
        let Draft {
            ticket,
            mut body,
            revision,
        } = draft;
        match notes.first().copied() {
            Some("greet the customer") => {
                let name = ticket.customer.split(' ').next().unwrap_or("there");
                body = format!("Hi {name},\n{body}");
            }
            Some("reference the ticket number") => {
                body.push_str(&format!("\n-- support, re: ticket #{}", ticket.id));
            }
            _ => {}
        }
        Draft {
            ticket,
            body,
            revision: revision + 1,
        }
    }

    /// Terminal: the approved draft goes out.
    #[step(after = review, branch = Verdict::Approved(draft))]
    async fn send_reply(&self, draft: Draft) -> Resolution {
        Resolution::Replied {
            ticket: draft.ticket.id,
            to: draft.ticket.customer,
            body: draft.body,
            revisions: draft.revision,
        }
    }

    // --- The other categories ---------------------------------------------------------------

    /// Terminal: feature requests go to the backlog.
    #[step(after = classify, branch = Category::Feature(ticket))]
    async fn add_to_backlog(&self, ticket: Ticket) -> Resolution {
        Resolution::Backlogged {
            ticket: ticket.id,
            label: "customer-request",
        }
    }

    /// Terminal: a unit-variant branch, so the step takes no input.
    #[step(after = classify, branch = Category::Spam)]
    async fn close_as_spam(&self) -> Resolution {
        Resolution::ClosedAsSpam
    }
}

// ---------------------------------------------------------------------------------------------
// Running it
// ---------------------------------------------------------------------------------------------

const TICKETS: &[&str] = &[
    "Ticket: 101\nFrom: Ada Lovelace\nSubject: App crashes on PDF export\n\n\
     Every time I export my report the app crashes.",
    "Ticket: 102\nFrom: Grace Hopper\nSubject: How do I reset my password?\n\n\
     I forgot my password and cannot log in.",
    "Ticket: 103\nFrom: Alan Turing\nSubject: Keyboard shortcuts\n\n\
     Which shortcut opens the command palette?",
    "Ticket: 104\nFrom: Edsger Dijkstra\nSubject: Dark mode\n\n\
     It would be nice to have a dark mode.",
    "Ticket: 105\nFrom: Totally Legit Prizes\nSubject: You are a WINNER\n\n\
     Click here to claim your crypto.",
    "From: someone\n\nno subject, no ticket number",
];

fn agent() -> Triage {
    Triage {
        owners: vec![
            ("export", "Linus (exports team)"),
            ("login", "Margaret (auth team)"),
        ],
        faq: vec![(
            "password",
            "use \"Forgot password\" on the login page; the link is valid for 1 hour",
        )],
    }
}

#[tokio::main]
async fn main() {
    let engine = Engine::in_memory();

    for raw in TICKETS {
        let subject = raw
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("(no subject)");
        println!("== {subject}");

        let started = Instant::now();
        let finished = engine.run_with_history(agent(), raw.to_string()).await;
        let took = started.elapsed();

        let path = &finished.history.path;
        if path.is_empty() {
            println!("   path:    (no step completed)");
        } else {
            println!("   path:    {}", path.join(" -> "));
        }
        println!(
            "   skipped: {}",
            finished
                .history
                .with_outcome(StepOutcome::Skipped)
                .join(", ")
        );
        match &finished.result {
            Ok(resolution) => println!("   output:  {resolution}"),
            Err(error) => println!("   error:   {error}"),
        }
        println!("   took:    {} ms", took.as_millis());
        println!();
    }

    println!("The graph, as Mermaid (paste into https://mermaid.live):\n");
    println!("{}", Triage::definition().to_mermaid());
}
