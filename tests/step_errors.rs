//! Errors of a step keep their structure: an `anyhow::Error` or a `Box<dyn Error>` returned by
//! a step converts into `StepError` keeping the original error, which callers downcast.

use workflow_core::prelude::*;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("card {0} declined")]
struct Declined(u32);

struct Payments;

#[workflow]
impl Payments {
    #[step]
    async fn charge(&self, card: u32) -> anyhow::Result<u32> {
        let declined = anyhow::Error::new(Declined(card));
        Err(declined.context("charging the order"))
    }
}

struct Refunds;

#[workflow]
impl Refunds {
    #[step]
    async fn refund(&self, card: u32) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
        Err(Box::new(Declined(card)))
    }
}

#[tokio::test]
async fn an_anyhow_error_keeps_its_chain_and_its_original_error() {
    match Engine::in_memory().run(&Payments, 7).await.unwrap_err() {
        WorkflowError::StepFailed { step, error, .. } => {
            assert_eq!(step, "charge");
            assert_eq!(error.downcast_ref::<Declined>(), Some(&Declined(7)));
            assert_eq!(error.to_string(), "charging the order: card 7 declined");
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_boxed_error_keeps_its_type() {
    match Engine::in_memory().run(&Refunds, 9).await.unwrap_err() {
        WorkflowError::StepFailed { error, .. } => {
            assert_eq!(error.downcast_ref::<Declined>(), Some(&Declined(9)));
            assert_eq!(error.to_string(), "card 9 declined");
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
}
