//! `Harness::signal` takes the handle of a step that waits for a signal, and a payload of
//! that signal's type.
use workflow_core::prelude::*;
use workflow_testkit::Harness;

struct Approval;

#[workflow]
impl Approval {
    #[step]
    async fn request(&self, amount: u32) -> u32 {
        amount
    }
    #[step(after = request)]
    async fn decide(&self, amount: u32, approved: Signal<bool>) -> String {
        format!("{amount}: {approved:?}")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // Wrong payload: `approved` carries a `bool`.
    let _ = Harness::sqlite_temp(Approval)
        .await
        .signal(Approval::steps().decide, "yes")
        .run(3)
        .await;
    // `request` waits for no signal.
    let _ = Harness::sqlite_temp(Approval)
        .await
        .signal(Approval::steps().request, true)
        .run(3)
        .await;
}
