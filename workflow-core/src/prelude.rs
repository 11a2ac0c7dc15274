//! Everything a workflow author needs: `use workflow_core::prelude::*;`.

pub use crate::context::StepContext;
pub use crate::durable::DurableEngine;
pub use crate::engine::{Engine, Finished};
pub use crate::error::{StepError, WorkflowError};
pub use crate::events::RunEvent;
pub use crate::handle::{RunHandle, SignalName};
pub use crate::history::{RunHistory, StepOutcome};
pub use crate::options::{CancellationToken, RunOptions, StepName};
pub use crate::report::FailureReport;
pub use crate::run_id::RunId;
pub use crate::signal::Signal;
pub use crate::store::RunStatus;
pub use crate::worker::WorkerOptions;
pub use crate::workflow::Workflow;
pub use workflow_macros::{saga_step, step, workflow};
