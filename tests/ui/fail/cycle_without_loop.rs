//! The user made `check -> fix -> verify -> check` a cycle without declaring a loop
//! (`after = any(entry, back)` plus `max_passes`).
use workflow_core::prelude::*;

struct Repair;

#[workflow]
impl Repair {
    #[step]
    async fn start(&self, n: u32) -> u32 {
        n
    }
    #[step(after = verify)]
    async fn check(&self, n: u32) -> u32 {
        n
    }
    #[step(after = check)]
    async fn fix(&self, n: u32) -> u32 {
        n
    }
    #[step(after = [start, fix])]
    async fn verify(&self, a: u32, b: u32) -> u32 {
        a + b
    }
}

fn main() {}
