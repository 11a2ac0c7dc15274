//! The examples' workflows, tested with `workflow-testkit`. Examples are binaries, so their
//! workflows are copied here (printing and the approval example's crash gate left out: the
//! harness crashes runs itself).

use std::fmt;
use std::time::{Duration, Instant};

use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};
use workflow_testkit::Harness;

// =============================================================================================
// examples/hello.rs
// =============================================================================================

struct Hello;

#[workflow]
impl Hello {
    #[step]
    async fn greet(&self, name: String) -> String {
        format!("hello, {name}")
    }

    #[step(after = greet)]
    async fn shout(&self, greeting: String) -> Result<String, StepError> {
        Ok(greeting.to_uppercase() + "!")
    }
}

#[tokio::test(start_paused = true)]
async fn hello_greets_then_shouts() {
    let run = Harness::new(Hello).run("world".to_string()).await;
    assert_eq!(run.output(), "HELLO, WORLD!");
    run.assert_path(["greet", "shout"]);
    assert_eq!(
        run.to_text(),
        "greet  completed  1 attempt\nshout  completed  1 attempt\n"
    );
}

#[tokio::test(start_paused = true)]
async fn hello_shouts_whatever_greet_says() {
    let run = Harness::new(Hello)
        .mock(Hello::steps().greet, |(name,)| async move {
            Ok(format!("bonjour, {name}"))
        })
        .run("monde".to_string())
        .await;
    assert_eq!(run.output(), "BONJOUR, MONDE!");
}

#[tokio::test(start_paused = true)]
async fn hello_fails_when_shout_fails() {
    let run = Harness::new(Hello)
        .fail_permanently(Hello::steps().shout)
        .run("world".to_string())
        .await;
    assert_eq!(run.error().step(), Some("shout"));
    run.assert_path(["greet"]);
}

// =============================================================================================
// examples/order_saga.rs
// =============================================================================================

mod order_saga {
    use super::*;

    #[derive(Clone, Debug)]
    pub struct Order {
        pub id: u32,
        pub sku: String,
        pub cents: u64,
    }

    #[derive(Clone, Debug)]
    pub struct Reservation {
        pub order: u32,
        pub sku: String,
    }

    #[derive(Clone, Debug)]
    pub struct Receipt {
        pub order: u32,
        pub cents: u64,
    }

    #[derive(Debug, thiserror::Error)]
    pub enum CheckoutError {
        #[error("order {0} has no items")]
        Empty(u32),
        #[error("carrier refused the parcel for order {0}")]
        CarrierDown(u32),
    }

    pub struct Checkout {
        pub fail_shipping: bool,
    }

    #[workflow]
    impl Checkout {
        #[step]
        async fn validate(&self, order: Order) -> Result<Order, CheckoutError> {
            if order.sku.is_empty() {
                return Err(CheckoutError::Empty(order.id));
            }
            Ok(order)
        }

        #[saga_step(after = validate, compensation = release)]
        async fn reserve(&self, order: Order) -> Reservation {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Reservation {
                order: order.id,
                sku: order.sku,
            }
        }

        #[saga_step(after = validate, compensation = refund, retry = 3, timeout = "10s")]
        async fn charge(&self, _ctx: &StepContext, order: Order) -> Receipt {
            Receipt {
                order: order.id,
                cents: order.cents,
            }
        }

        #[step(after = [reserve, charge])]
        async fn ship(
            &self,
            reservation: Reservation,
            receipt: Receipt,
        ) -> Result<String, CheckoutError> {
            if self.fail_shipping {
                return Err(CheckoutError::CarrierDown(reservation.order));
            }
            Ok(format!(
                "order {} shipped ({}, {} cents)",
                receipt.order, reservation.sku, receipt.cents
            ))
        }

        async fn release(&self, _reservation: Reservation) {}

        async fn refund(&self, _receipt: Receipt) -> Result<(), CheckoutError> {
            Ok(())
        }
    }

    pub fn kettle() -> Order {
        Order {
            id: 42,
            sku: "kettle".into(),
            cents: 3_999,
        }
    }
}

use order_saga::{Checkout, CheckoutError, Receipt};

#[tokio::test(start_paused = true)]
async fn order_saga_ships() {
    let run = Harness::new(Checkout {
        fail_shipping: false,
    })
    .run(order_saga::kettle())
    .await;
    assert_eq!(run.output(), "order 42 shipped (kettle, 3999 cents)");
    // `reserve` takes 20 ms (virtual), so `charge` completes first.
    run.assert_path(["validate", "charge", "reserve", "ship"])
        .assert_ran(["validate", "reserve", "charge", "ship"])
        .assert_skipped([]);
}

#[tokio::test(start_paused = true)]
async fn order_saga_compensates_a_failed_shipment_in_reverse_completion_order() {
    let run = Harness::new(Checkout {
        fail_shipping: true,
    })
    .run(order_saga::kettle())
    .await;
    let error = run.error();
    assert_eq!(error.step(), Some("ship"));
    assert!(matches!(
        error,
        WorkflowError::StepFailed { error, .. }
            if matches!(error.downcast_ref::<CheckoutError>(), Some(CheckoutError::CarrierDown(42)))
    ));
    run.assert_compensated(["reserve", "charge"]);
    assert_eq!(
        run.to_text(),
        "\
validate  completed  1 attempt
reserve   completed  1 attempt  compensated by release
charge    completed  1 attempt  compensated by refund
ship      failed     1 attempt
"
    );
}

#[tokio::test(start_paused = true)]
async fn order_saga_rejects_an_empty_order_before_any_side_effect() {
    let mut order = order_saga::kettle();
    order.sku.clear();
    let run = Harness::new(Checkout {
        fail_shipping: false,
    })
    .run(order)
    .await;
    assert!(run.error().to_string().contains("order 42 has no items"));
    run.assert_path([])
        .assert_skipped(["reserve", "charge", "ship"])
        .assert_compensated([]);
}

#[tokio::test(start_paused = true)]
async fn order_saga_retries_a_flaky_payment() {
    let steps = Checkout::steps();
    let run = Harness::new(Checkout {
        fail_shipping: false,
    })
    .fail_times(steps.charge, 3)
    .run(order_saga::kettle())
    .await;
    assert_eq!(run.output(), "order 42 shipped (kettle, 3999 cents)");
    run.assert_attempts(steps.charge, 4)
        .assert_attempts(steps.reserve, 1);
}

#[tokio::test(start_paused = true)]
async fn order_saga_refunds_when_the_payment_hangs_past_its_timeouts() {
    let real = Instant::now();
    let steps = Checkout::steps();
    let run = Harness::new(Checkout {
        fail_shipping: false,
    })
    .hang(steps.charge)
    .run(order_saga::kettle())
    .await;
    // Four attempts of 10 s each: `reserve` completed meanwhile and is released.
    assert_eq!(run.error().step(), Some("charge"));
    run.assert_attempts(steps.charge, 4)
        .assert_compensated(["reserve"])
        .assert_skipped(["ship"]);
    assert!(real.elapsed() < Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn order_saga_with_a_mocked_payment_provider() {
    let run = Harness::new(Checkout {
        fail_shipping: false,
    })
    .mock(Checkout::steps().charge, |(order,)| async move {
        Ok(Receipt {
            order: order.id,
            cents: order.cents - 999,
        })
    })
    .run(order_saga::kettle())
    .await;
    assert_eq!(run.output(), "order 42 shipped (kettle, 3000 cents)");
}

#[tokio::test(start_paused = true)]
async fn order_saga_reports_a_refund_that_fails() {
    let run = Harness::new(Checkout {
        fail_shipping: true,
    })
    .fail_compensation(Checkout::steps().charge)
    .run(order_saga::kettle())
    .await;
    run.assert_compensated(["reserve"])
        .assert_compensation_failed(Checkout::steps().charge);
    assert!(run.to_mermaid().ends_with(
        "\
    class validate completed
    class reserve compensated
    class charge completed
    class ship failed
"
    ));
}

// =============================================================================================
// examples/approval.rs (durable, with a signal)
// =============================================================================================

mod approval {
    use super::*;

    #[derive(Clone, Debug, Serialize, Deserialize)]
    #[serde(crate = "workflow_core::serde")]
    pub struct ExpenseRequest {
        pub employee: String,
        pub description: String,
        pub cents: u64,
    }

    #[derive(Clone, Debug, Serialize, Deserialize)]
    #[serde(crate = "workflow_core::serde")]
    pub struct Draft {
        pub number: String,
        pub employee: String,
        pub cents: u64,
    }

    #[derive(Clone, Debug, Serialize, Deserialize)]
    #[serde(crate = "workflow_core::serde")]
    pub struct Reservation {
        pub draft: Draft,
        pub reservation_id: String,
    }

    #[derive(Clone, Debug, Serialize, Deserialize)]
    #[serde(crate = "workflow_core::serde")]
    pub enum Decision {
        Approve { by: String },
        Reject { by: String, reason: String },
    }

    #[derive(Clone, Debug, Serialize, Deserialize)]
    #[serde(crate = "workflow_core::serde")]
    pub struct Approved {
        pub reservation: Reservation,
        pub by: String,
    }

    #[derive(Clone, Debug, Serialize, Deserialize)]
    #[serde(crate = "workflow_core::serde")]
    pub struct Payment {
        pub draft: Draft,
        pub payment_id: String,
    }

    pub struct Expense;

    #[workflow]
    impl Expense {
        #[step]
        async fn draft(&self, request: ExpenseRequest) -> Result<Draft, StepError> {
            if request.cents == 0 {
                return Err(StepError::permanent(StepError::msg(
                    "an expense of 0 cents",
                )));
            }
            Ok(Draft {
                number: "EXP-0042".into(),
                employee: request.employee,
                cents: request.cents,
            })
        }

        #[saga_step(after = draft, compensation = release_budget)]
        async fn reserve_budget(&self, _ctx: &StepContext, draft: Draft) -> Reservation {
            Reservation {
                reservation_id: format!("RES-{}", draft.number),
                draft,
            }
        }

        #[step(after = reserve_budget, deadline = "48h")]
        async fn manager_approval(
            &self,
            reservation: Reservation,
            decision: Signal<Decision>,
        ) -> Result<Approved, StepError> {
            match decision {
                Signal::Received(Decision::Approve { by }) => Ok(Approved { reservation, by }),
                Signal::Received(Decision::Reject { by, reason }) => {
                    Err(StepError::permanent(StepError::msg(format!(
                        "{} rejected by {by}: {reason}",
                        reservation.draft.number
                    ))))
                }
                Signal::TimedOut => Err(StepError::permanent(StepError::msg(format!(
                    "{} not decided within 48h",
                    reservation.draft.number
                )))),
            }
        }

        #[saga_step(after = manager_approval, compensation = refund_payment)]
        async fn book_payment(&self, _ctx: &StepContext, approved: Approved) -> Payment {
            let draft = approved.reservation.draft;
            Payment {
                payment_id: format!("PAY-{}", draft.number),
                draft,
            }
        }

        #[step(after = book_payment)]
        async fn notify(&self, _ctx: &StepContext, payment: Payment) -> String {
            format!(
                "{} paid: {} cents to {} ({})",
                payment.draft.number,
                payment.draft.cents,
                payment.draft.employee,
                payment.payment_id
            )
        }

        async fn release_budget(&self, _ctx: &StepContext, _reservation: Reservation) {}

        async fn refund_payment(&self, _ctx: &StepContext, _payment: Payment) {}
    }

    pub fn ticket() -> ExpenseRequest {
        ExpenseRequest {
            employee: "ada".into(),
            description: "train ticket to the conference".into(),
            cents: 12_900,
        }
    }

    pub fn approve() -> Decision {
        Decision::Approve { by: "maria".into() }
    }
}

use approval::{Decision, Expense};

const PAID: &str = "EXP-0042 paid: 12900 cents to ada (PAY-EXP-0042)";

#[tokio::test(start_paused = true)]
async fn approval_pays_once_the_manager_approves() {
    let run = Harness::sqlite_temp(Expense)
        .await
        .signal(Expense::steps().manager_approval, approval::approve())
        .run(approval::ticket())
        .await;
    assert_eq!(run.output(), PAID);
    run.assert_path([
        "draft",
        "reserve_budget",
        "manager_approval",
        "book_payment",
        "notify",
    ]);
}

#[tokio::test(start_paused = true)]
async fn approval_releases_the_budget_when_rejected() {
    let run = Harness::sqlite_temp(Expense)
        .await
        .signal(
            Expense::steps().manager_approval,
            Decision::Reject {
                by: "maria".into(),
                reason: "no receipt attached".into(),
            },
        )
        .run(approval::ticket())
        .await;
    assert!(run
        .error()
        .to_string()
        .contains("EXP-0042 rejected by maria: no receipt attached"));
    run.assert_outcome(Expense::steps().manager_approval, StepOutcome::Failed)
        .assert_compensated(["reserve_budget"])
        .assert_skipped(["book_payment", "notify"]);
}

#[tokio::test(start_paused = true)]
async fn approval_resumes_after_a_crash_without_reserving_twice() {
    let crashed = Harness::sqlite_temp(Expense)
        .await
        .crash_after(Expense::steps().reserve_budget)
        .signal(Expense::steps().manager_approval, approval::approve())
        .run(approval::ticket())
        .await;
    assert!(matches!(
        crashed.error(),
        WorkflowError::Interrupted {
            step: "reserve_budget",
            ..
        }
    ));
    crashed.assert_path(["draft", "reserve_budget"]);

    let resumed = crashed.resume_fresh().await;
    assert_eq!(resumed.output(), PAID);
    resumed
        .assert_restored(["draft", "reserve_budget"])
        .assert_ran(["manager_approval", "book_payment", "notify"]);
}

#[tokio::test(start_paused = true)]
async fn approval_crash_after_the_payment_does_not_pay_twice() {
    let steps = Expense::steps();
    let crashed = Harness::sqlite_temp(Expense)
        .await
        .crash_after(steps.book_payment)
        .signal(steps.manager_approval, approval::approve())
        .run(approval::ticket())
        .await;
    let resumed = crashed.resume_fresh().await;
    assert_eq!(resumed.output(), PAID);
    resumed
        .assert_ran(["notify"])
        .assert_attempts(steps.book_payment, 0);
}

/// 48 virtual hours pass in about a second of real time: the signal wait re-reads the store
/// at intervals that grow to 10 s.
#[tokio::test(start_paused = true)]
async fn approval_times_out_after_48h_of_virtual_time() {
    let real = Instant::now();
    let run = Harness::sqlite_temp(Expense)
        .await
        .run(approval::ticket())
        .await;
    assert!(
        run.error().to_string().contains("not decided within 48h"),
        "{}",
        run.error()
    );
    run.assert_compensated(["reserve_budget"]);
    assert!(
        real.elapsed() < Duration::from_secs(120),
        "{:?}",
        real.elapsed()
    );
}

// =============================================================================================
// examples/triage.rs (branches, all/any joins, a bounded loop)
// =============================================================================================

mod triage {
    use super::*;

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

    #[derive(Clone, Debug)]
    pub enum Category {
        Bug(Ticket),
        Feature(Ticket),
        Question(Ticket),
        Spam,
    }

    #[derive(Clone, Debug)]
    pub struct Finding {
        pub source: &'static str,
        pub note: String,
    }

    #[derive(Clone, Debug)]
    pub struct Answer {
        pub ticket: Ticket,
        pub source: &'static str,
        pub text: String,
    }

    #[derive(Clone, Debug)]
    pub struct Draft {
        pub ticket: Ticket,
        pub body: String,
        pub revision: u32,
    }

    #[derive(Clone, Debug)]
    pub enum Verdict {
        Approved(Draft),
        ChangesRequested(Draft, Vec<&'static str>),
    }

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
            write!(f, "{self:?}")
        }
    }

    pub struct Triage {
        pub owners: Vec<(&'static str, &'static str)>,
        pub faq: Vec<(&'static str, &'static str)>,
    }

    #[workflow(name = "ticket-triage")]
    impl Triage {
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

        #[step(after = classify, branch = Category::Bug(ticket))]
        async fn open_bug(&self, ticket: Ticket) -> Ticket {
            ticket
        }

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

        #[step(after = classify, branch = Category::Question(ticket))]
        async fn open_question(&self, ticket: Ticket) -> Ticket {
            ticket
        }

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

        #[step(after = any(search_faq, search_docs))]
        async fn first_answer(&self, answer: Answer) -> Answer {
            answer
        }

        #[step(after = any(diagnose, first_answer))]
        async fn draft_reply(&self, answer: Answer) -> Draft {
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

        #[step(after = review, branch = Verdict::Approved(draft))]
        async fn send_reply(&self, draft: Draft) -> Resolution {
            Resolution::Replied {
                ticket: draft.ticket.id,
                to: draft.ticket.customer,
                body: draft.body,
                revisions: draft.revision,
            }
        }

        #[step(after = classify, branch = Category::Feature(ticket))]
        async fn add_to_backlog(&self, ticket: Ticket) -> Resolution {
            Resolution::Backlogged {
                ticket: ticket.id,
                label: "customer-request",
            }
        }

        #[step(after = classify, branch = Category::Spam)]
        async fn close_as_spam(&self) -> Resolution {
            Resolution::ClosedAsSpam
        }
    }

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
}

use triage::{Resolution, Triage};

const BUG_BRANCH: [&str; 5] = [
    "open_bug",
    "search_logs",
    "search_issues",
    "ask_owner",
    "diagnose",
];
const QUESTION_BRANCH: [&str; 4] = ["open_question", "search_faq", "search_docs", "first_answer"];
const REPLY: [&str; 4] = ["draft_reply", "review", "revise", "send_reply"];

/// The steps of `groups`, flattened.
fn steps<const N: usize>(groups: [&[&'static str]; N]) -> Vec<&'static str> {
    groups.concat()
}

#[tokio::test(start_paused = true)]
async fn triage_researches_a_bug_then_reviews_the_reply_twice() {
    let run = Harness::new(triage::agent())
        .run(triage::BUG.to_string())
        .await;
    match run.output() {
        Resolution::Replied {
            ticket,
            revisions,
            to,
            ..
        } => {
            assert_eq!(*ticket, 101);
            assert_eq!(to, "Ada Lovelace");
            assert_eq!(*revisions, 1);
        }
        other => panic!("unexpected resolution {other}"),
    }
    run.assert_ran(steps([&["parse", "classify"], &BUG_BRANCH, &REPLY]))
        .assert_skipped(steps([
            &QUESTION_BRANCH,
            &["add_to_backlog", "close_as_spam"],
        ]))
        .assert_attempts(Triage::steps().review, 2)
        .assert_attempts(Triage::steps().revise, 1);
    // The three research steps overlap; the path shows the slowest last.
    assert_eq!(
        &run.history().path[..6],
        [
            "parse",
            "classify",
            "open_bug",
            "search_logs",
            "search_issues",
            "ask_owner"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn triage_takes_the_first_answer_to_a_question() {
    let run = Harness::new(triage::agent())
        .run(triage::PASSWORD.to_string())
        .await;
    match run.output() {
        Resolution::Replied { body, .. } => assert!(body.contains("(source: faq)"), "{body}"),
        other => panic!("unexpected resolution {other}"),
    }
    // The FAQ has an article, so it beats the docs search; the docs search still completes
    // (or is dropped) after the any-join fired.
    run.assert_skipped(steps([&BUG_BRANCH, &["add_to_backlog", "close_as_spam"]]));
    let first = run.history().path.iter().position(|s| *s == "search_faq");
    let join = run.history().path.iter().position(|s| *s == "first_answer");
    assert!(first < join, "{:?}", run.history().path);

    let run = Harness::new(triage::agent())
        .run(triage::SHORTCUTS.to_string())
        .await;
    match run.output() {
        Resolution::Replied { body, .. } => assert!(body.contains("(source: docs)"), "{body}"),
        other => panic!("unexpected resolution {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn triage_answers_from_a_mocked_knowledge_base() {
    let run = Harness::new(triage::agent())
        .mock(Triage::steps().search_docs, |(ticket,)| async move {
            Ok(triage::Answer {
                text: format!("Hi {}, see #{}", ticket.customer, ticket.id),
                ticket,
                source: "research",
            })
        })
        .run(triage::SHORTCUTS.to_string())
        .await;
    match run.output() {
        Resolution::Replied {
            revisions, body, ..
        } => {
            assert_eq!(*revisions, 0, "{body}");
            assert_eq!(body, "Hi Alan Turing, see #103");
        }
        other => panic!("unexpected resolution {other}"),
    }
    // The mocked docs search answers at once; the FAQ search (150 ms) loses the race.
    let path = &run.history().path;
    assert_eq!(
        path[..4],
        ["parse", "classify", "open_question", "search_docs"]
    );
    run.assert_attempts(Triage::steps().review, 1)
        .assert_skipped(steps([
            &BUG_BRANCH,
            &["revise", "add_to_backlog", "close_as_spam"],
        ]));
}

#[tokio::test(start_paused = true)]
async fn triage_backlogs_features_and_closes_spam() {
    let run = Harness::new(triage::agent())
        .run(triage::DARK_MODE.to_string())
        .await;
    assert!(matches!(
        run.output(),
        Resolution::Backlogged {
            ticket: 104,
            label: "customer-request"
        }
    ));
    run.assert_path(["parse", "classify", "add_to_backlog"]);

    let run = Harness::new(triage::agent())
        .run(triage::SPAM.to_string())
        .await;
    assert!(matches!(run.output(), Resolution::ClosedAsSpam));
    run.assert_path(["parse", "classify", "close_as_spam"]);
}

#[tokio::test(start_paused = true)]
async fn triage_fails_on_a_malformed_ticket() {
    let run = Harness::new(triage::agent())
        .run(triage::MALFORMED.to_string())
        .await;
    assert!(run
        .error()
        .to_string()
        .contains("ticket has no `Ticket:` header"));
    run.assert_path([])
        .assert_outcome(Triage::steps().parse, StepOutcome::Failed);
}

#[tokio::test(start_paused = true)]
async fn triage_hits_its_loop_bound_when_the_reviewer_is_never_satisfied() {
    let run = Harness::new(triage::agent())
        .mock(Triage::steps().review, |(draft,)| async move {
            Ok(triage::Verdict::ChangesRequested(draft, vec!["shorter"]))
        })
        .run(triage::DARK_MODE.replace("would be nice", "why"))
        .await;
    assert!(
        matches!(
            run.error(),
            WorkflowError::LoopLimitExceeded {
                step: "review",
                max_iterations: 3,
                ..
            }
        ),
        "{}",
        run.error()
    );
    run.assert_attempts(Triage::steps().review, 3)
        .assert_attempts(Triage::steps().revise, 3);
}
