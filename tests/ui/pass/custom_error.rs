//! A step returning `Result<T, E>` with the user's own `std::error::Error` type: the
//! step's output is `T`, and the error fails the run.
use workflow_core::prelude::*;

#[derive(Debug)]
struct NotANumber(String);

impl std::fmt::Display for NotANumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` is not a number", self.0)
    }
}

impl std::error::Error for NotANumber {}

struct Parse;

#[workflow]
impl Parse {
    #[step]
    async fn parse(&self, text: String) -> Result<i64, NotANumber> {
        text.parse().map_err(|_| NotANumber(text))
    }
    #[step(after = parse)]
    async fn negate(&self, n: i64) -> std::result::Result<i64, NotANumber> {
        Ok(-n)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let engine = Engine::in_memory();
    assert_eq!(engine.run(&Parse, "5".to_string()).await.unwrap(), -5);
    assert!(engine.run(&Parse, "five".to_string()).await.is_err());
}
