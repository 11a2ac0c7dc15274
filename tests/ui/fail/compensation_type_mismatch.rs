//! The compensation `cancel` takes a `String`, but `book` returns `u32`.
use workflow_core::prelude::*;

struct Booking;

#[workflow]
impl Booking {
    #[saga_step(compensation = cancel)]
    async fn book(&self, seat: u32) -> u32 {
        seat
    }
    async fn cancel(&self, seat: String) {
        let _ = seat;
    }
}

fn main() {}
