//! `branch = Route::Bug(report)` binds a `String`, but the step declares `report: u32`.
use workflow_core::prelude::*;

#[derive(Clone, Debug)]
enum Route {
    Bug(String),
    Spam,
}

struct Triage;

#[workflow]
impl Triage {
    #[step]
    async fn classify(&self, text: String) -> Route {
        Route::Bug(text)
    }
    #[step(after = classify, branch = Route::Bug(report))]
    async fn bug(&self, report: u32) -> u32 {
        report
    }
    #[step(after = classify, branch = Route::Spam)]
    async fn spam(&self) -> u32 {
        0
    }
}

fn main() {}
