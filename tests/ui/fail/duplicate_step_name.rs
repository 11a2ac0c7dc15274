//! The user gave a step the stable name `send` with `name = ".."`, but another step is
//! already called `send`.
use workflow_core::prelude::*;

struct Mailer;

#[workflow]
impl Mailer {
    #[step]
    async fn send(&self, to: String) -> String {
        to
    }
    #[step(after = send, name = "send")]
    async fn resend(&self, to: String) -> String {
        to
    }
}

fn main() {}
