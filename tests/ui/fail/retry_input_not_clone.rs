//! A step with `retry` gets a fresh copy of its input per attempt, but `Job` is not `Clone`.
use workflow_core::prelude::*;

struct Job(u32);

struct Runner;

#[workflow]
impl Runner {
    #[step(retry = 3)]
    async fn run(&self, job: Job) -> u32 {
        job.0
    }
}

fn main() {}
