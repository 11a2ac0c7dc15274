//! `branch = r @ Pattern`: the step receives the whole matched value, not its parts.
use workflow_core::prelude::*;

#[derive(Clone, Debug, PartialEq)]
enum Route {
    Urgent(u8),
    Normal(u8),
}

struct Dispatch;

#[workflow]
impl Dispatch {
    #[step]
    async fn route(&self, level: u8) -> Route {
        if level > 5 { Route::Urgent(level) } else { Route::Normal(level) }
    }
    #[step(after = route, branch = r @ Route::Urgent(_))]
    async fn page(&self, r: Route) -> String {
        format!("page on-call: {r:?}")
    }
    #[step(after = route, branch = Route::Normal(level))]
    async fn queue(&self, level: u8) -> String {
        format!("queued at {level}")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let engine = Engine::in_memory();
    assert_eq!(engine.run(&Dispatch, 9).await.unwrap(), "page on-call: Urgent(9)");
    assert_eq!(engine.run(&Dispatch, 2).await.unwrap(), "queued at 2");
}
