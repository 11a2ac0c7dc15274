//! The compensation method `cancle` is a typo of `cancel`.
use workflow_core::prelude::*;

struct Booking;

#[workflow]
impl Booking {
    #[saga_step(compensation = cancle)]
    async fn book(&self, seat: u32) -> u32 {
        seat
    }
    async fn cancel(&self, seat: u32) {
        let _ = seat;
    }
}

fn main() {}
