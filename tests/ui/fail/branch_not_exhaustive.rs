//! The branches of `classify` cover `Bug` and `Feature` but forget `Spam`.
use workflow_core::prelude::*;

#[derive(Clone, Debug)]
enum Route {
    Bug(String),
    Feature(String),
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
    async fn bug(&self, report: String) -> String {
        report
    }
    #[step(after = classify, branch = Route::Feature(f))]
    async fn feature(&self, f: String) -> String {
        f
    }
}

fn main() {}
