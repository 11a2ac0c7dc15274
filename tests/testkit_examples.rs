//! The examples' workflows, tested with `workflow-testkit`. Each example keeps its workflow in
//! `examples/NAME/workflow.rs`, which is included here as a module (the example's `main.rs` is
//! left out). The harness crashes the approval workflow's runs itself (its type carries no
//! crash plumbing).

#[path = "common/temp_db.rs"]
mod temp_db;
use std::time::{Duration, Instant};
use temp_db::TempDb;

use workflow_core::prelude::*;
use workflow_testkit::Harness;

// =============================================================================================
// examples/hello
// =============================================================================================

#[path = "../examples/hello/workflow.rs"]
mod hello;

use hello::Hello;

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
// examples/order_saga
// =============================================================================================

#[path = "../examples/order_saga/workflow.rs"]
mod order_saga;

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
// examples/approval (durable, with a signal)
// =============================================================================================

#[path = "../examples/approval/workflow.rs"]
mod approval;

use approval::{Decision, Expense};

const PAID: &str = "EXP-0042 paid: 12900 cents to ada (PAY-EXP-0042)";

#[tokio::test(start_paused = true)]
async fn approval_pays_once_the_manager_approves() {
    let run = Harness::sqlite_temp(Expense)
        .await
        .signal(Expense::steps().manager_approval, approval::approve())
        .run(approval::train_ticket())
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
        .run(approval::train_ticket())
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
        .run(approval::train_ticket())
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
        .run(approval::train_ticket())
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
        .run(approval::train_ticket())
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
// examples/triage (branches, all/any joins, a bounded loop)
// =============================================================================================

#[path = "../examples/triage/workflow.rs"]
mod triage;

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
                max_passes: 3,
                ..
            }
        ),
        "{}",
        run.error()
    );
    run.assert_attempts(Triage::steps().review, 3)
        .assert_attempts(Triage::steps().revise, 3);
}

// =============================================================================================
// examples/research (a child per document, a race, a fallback, a bulk)
// =============================================================================================

#[path = "../examples/research/workflow.rs"]
mod research;

/// Paused time: the models' sleeps end in deadline order, whatever the machine's load.
#[tokio::test(start_paused = true)]
async fn research_summarizes_each_document_with_a_child_run() {
    let out = Engine::in_memory()
        .run(&research::Research, "t".to_owned())
        .await
        .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].ends_with("(small model)"),
        "the small model wins a short text: {out}"
    );
    assert!(lines[1].ends_with("(large model)"), "{out}");
    assert!(
        lines[2].starts_with("(no summary:"),
        "the fallback stands in: {out}"
    );
}

#[tokio::test]
async fn research_on_a_durable_engine_stores_each_child() {
    let path = TempDb::new("research");
    let engine = Engine::sqlite(&path).await.unwrap();
    let out = engine
        .run(&research::Research, "t".to_owned())
        .await
        .unwrap();
    assert_eq!(out.lines().count(), 3);
    let children = engine
        .list(&workflow_core::store::RunFilter {
            workflow: Some("Summarize".into()),
            status: Some(RunStatus::Completed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(children.runs.len(), 3);
    assert!(children.runs.iter().all(|r| r.run_id.is_child()));
}
