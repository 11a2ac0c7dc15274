//! `#[saga_step]` without `compensation = method`: nothing says how to undo the step.
use workflow_core::prelude::*;

struct Booking;

#[workflow]
impl Booking {
    #[saga_step]
    async fn book(&self, seat: u32) -> u32 {
        seat
    }
    async fn cancel(&self, seat: u32) {
        let _ = seat;
    }
}

fn main() {}
