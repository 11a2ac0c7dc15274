//! The expense approval workflow and its types: `draft`, `reserve_budget` (a saga step, undone
//! by `release_budget`), `manager_approval` (waits up to 48h for the `decision` signal),
//! `book_payment` (a saga step, undone by `refund_payment`), `notify`. Every side effect prints
//! its idempotency key. Shared by the `approval` example (`main.rs`) and
//! `tests/testkit_examples.rs`.

use workflow_core::prelude::*;
use workflow_core::serde::{Deserialize, Serialize};

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

/// The manager's answer. Its JSON Schema is stored with the workflow's definition, so the
/// dashboard's inbox and the `workflow` command line check a decision before sending it.
#[derive(Clone, Debug, Serialize, Deserialize, workflow_core::schemars::JsonSchema)]
#[serde(crate = "workflow_core::serde")]
#[schemars(crate = "workflow_core::schemars")]
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

/// The expense approval workflow.
#[derive(Clone, Default)]
pub struct Expense;

#[workflow]
impl Expense {
    /// Turns the request into a numbered draft (no side effect).
    #[step]
    async fn draft(&self, request: ExpenseRequest) -> Result<Draft, StepError> {
        if request.cents == 0 {
            return Err(StepError::permanent(StepError::msg(
                "an expense of 0 cents",
            )));
        }
        println!(
            "  [draft] {} wants {} cents for {:?}",
            request.employee, request.cents, request.description
        );
        Ok(Draft {
            number: "EXP-0042".into(),
            employee: request.employee,
            cents: request.cents,
        })
    }

    /// Reserves the amount in the department's budget.
    #[saga_step(after = draft, compensation = release_budget)]
    async fn reserve_budget(&self, ctx: &StepContext, draft: Draft) -> Reservation {
        println!(
            "  [side effect] reserve {} cents of budget   key={}",
            draft.cents,
            ctx.idempotency_key()
        );
        Reservation {
            reservation_id: format!("RES-{}", draft.number),
            draft,
        }
    }

    /// Waits up to 48h for the manager's `decision`. A rejection or a timeout is a permanent
    /// error: the run stops and the budget reservation is released.
    #[step(after = reserve_budget, deadline = "48h")]
    async fn manager_approval(
        &self,
        reservation: Reservation,
        decision: Signal<Decision>,
    ) -> Result<Approved, StepError> {
        match decision {
            Signal::Received(Decision::Approve { by }) => {
                println!("  [manager_approval] approved by {by}");
                Ok(Approved { reservation, by })
            }
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

    /// Books the payment to the employee.
    #[saga_step(after = manager_approval, compensation = refund_payment)]
    async fn book_payment(&self, ctx: &StepContext, approved: Approved) -> Payment {
        let draft = approved.reservation.draft;
        println!(
            "  [side effect] pay {} cents to {}   key={}",
            draft.cents,
            draft.employee,
            ctx.idempotency_key()
        );
        Payment {
            payment_id: format!("PAY-{}", draft.number),
            draft,
        }
    }

    /// Tells the employee.
    #[step(after = book_payment)]
    async fn notify(&self, ctx: &StepContext, payment: Payment) -> String {
        println!(
            "  [side effect] email {}   key={}",
            payment.draft.employee,
            ctx.idempotency_key()
        );
        format!(
            "{} paid: {} cents to {} ({})",
            payment.draft.number, payment.draft.cents, payment.draft.employee, payment.payment_id
        )
    }

    /// Undoes `reserve_budget`.
    async fn release_budget(&self, ctx: &StepContext, reservation: Reservation) {
        println!(
            "  [side effect] release reservation {} ({} cents)   key={}",
            reservation.reservation_id,
            reservation.draft.cents,
            ctx.idempotency_key()
        );
    }

    /// Undoes `book_payment`.
    async fn refund_payment(&self, ctx: &StepContext, payment: Payment) {
        println!(
            "  [side effect] refund {}   key={}",
            payment.payment_id,
            ctx.idempotency_key()
        );
    }
}

/// The request both the example and the tests submit.
pub fn train_ticket() -> ExpenseRequest {
    ExpenseRequest {
        employee: "ada".into(),
        description: "train ticket to the conference".into(),
        cents: 12_900,
    }
}

/// The manager's approval.
pub fn approve() -> Decision {
    Decision::Approve { by: "maria".into() }
}
