//! Steps returning a plain `T` (not a `Result`), including `()` and a tuple.
use workflow_core::prelude::*;

struct Plain;

#[workflow]
impl Plain {
    #[step]
    async fn start(&self, n: u8) -> (u8, u8) {
        (n, n + 1)
    }
    #[step(after = start)]
    async fn log(&self, pair: (u8, u8)) {
        let _ = pair;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    Engine::in_memory().run(&Plain, 1).await.unwrap();
}
