//! Two terminal steps that both run: `#[step(output)]` says which one is the workflow's
//! output (the other one is a side effect, e.g. an audit log).
use workflow_core::prelude::*;

struct Signup;

#[workflow]
impl Signup {
    #[step]
    async fn create(&self, email: String) -> String {
        email
    }
    #[step(after = create, output)]
    async fn welcome(&self, email: String) -> String {
        format!("welcome {email}")
    }
    #[step(after = create)]
    async fn audit(&self, email: String) -> usize {
        email.len()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = Engine::in_memory().run(&Signup, "a@b.c".to_string()).await.unwrap();
    assert_eq!(out, "welcome a@b.c");
}
