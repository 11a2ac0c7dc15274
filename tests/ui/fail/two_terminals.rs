//! `welcome` and `audit` both end the workflow and both run: which output is the
//! workflow's? The user must mark one `#[step(output)]` or join them.
use workflow_core::prelude::*;

struct Signup;

#[workflow]
impl Signup {
    #[step]
    async fn create(&self, email: String) -> String {
        email
    }
    #[step(after = create)]
    async fn welcome(&self, email: String) -> String {
        email
    }
    #[step(after = create)]
    async fn audit(&self, email: String) -> String {
        email
    }
}

fn main() {}
