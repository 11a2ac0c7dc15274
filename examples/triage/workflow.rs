//! The ticket-triage workflow and its types: parse, classify, then one branch per category (a
//! bug fans out to three research steps and an all-join, a question races two knowledge
//! sources into an any-join, both share a bounded review loop; features are backlogged, spam
//! closed). Also the agent's "services" (`agent`) and sample tickets. Shared by the `triage`
//! example (`main.rs`, which documents the graph) and `tests/testkit_examples.rs`.

use std::fmt;
use std::time::Duration;

use workflow_core::prelude::*;

// ---------------------------------------------------------------------------------------------
// Domain types
// ---------------------------------------------------------------------------------------------

/// A parsed support ticket.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub id: u32,
    pub customer: String,
    pub subject: String,
    pub body: String,
}

impl Ticket {
    fn mentions(&self, words: &[&str]) -> bool {
        let text = format!("{} {}", self.subject, self.body).to_lowercase();
        words.iter().any(|w| text.contains(w))
    }
}

/// What `classify` decided. Each variant is one branch of the graph.
#[derive(Clone, Debug)]
pub enum Category {
    Bug(Ticket),
    Feature(Ticket),
    Question(Ticket),
    Spam,
}

/// What the research steps found out about a bug.
#[derive(Clone, Debug)]
pub struct Finding {
    pub source: &'static str,
    pub note: String,
}

/// An answer to the customer's problem, from research or from a knowledge source.
#[derive(Clone, Debug)]
pub struct Answer {
    pub ticket: Ticket,
    pub source: &'static str,
    pub text: String,
}

/// A reply being written; `revision` counts the rounds of review feedback it went through.
#[derive(Clone, Debug)]
pub struct Draft {
    pub ticket: Ticket,
    pub body: String,
    pub revision: u32,
}

/// The reviewer's decision on a draft.
#[derive(Clone, Debug)]
pub enum Verdict {
    Approved(Draft),
    ChangesRequested(Draft, Vec<&'static str>),
}

/// How a ticket was resolved: the workflow's output.
#[derive(Debug)]
pub enum Resolution {
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
pub struct Triage {
    /// Component keyword -> the engineer who owns it.
    pub owners: Vec<(&'static str, &'static str)>,
    /// Topic keyword -> canned FAQ answer.
    pub faq: Vec<(&'static str, &'static str)>,
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
    #[step(after = any(draft_reply, revise), max_passes = 3)]
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
// The agent and sample tickets
// ---------------------------------------------------------------------------------------------

/// The agent with its owners and FAQ.
pub fn agent() -> Triage {
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

// Sample tickets: one per category, and one that fails to parse.
pub const BUG: &str = "Ticket: 101\nFrom: Ada Lovelace\nSubject: App crashes on PDF export\n\n\
    Every time I export my report the app crashes.";
pub const PASSWORD: &str =
    "Ticket: 102\nFrom: Grace Hopper\nSubject: How do I reset my password?\n\n\
    I forgot my password and cannot log in.";
pub const SHORTCUTS: &str = "Ticket: 103\nFrom: Alan Turing\nSubject: Keyboard shortcuts\n\n\
    Which shortcut opens the command palette?";
pub const DARK_MODE: &str = "Ticket: 104\nFrom: Edsger Dijkstra\nSubject: Dark mode\n\n\
    It would be nice to have a dark mode.";
pub const SPAM: &str = "Ticket: 105\nFrom: Totally Legit Prizes\nSubject: You are a WINNER\n\n\
    Click here to claim your crypto.";
pub const MALFORMED: &str = "From: someone\n\nno subject, no ticket number";
