//! `compensation` on a plain `#[step]`: only `#[saga_step]` can be compensated.
use workflow_core::prelude::*;

struct Booking;

#[workflow]
impl Booking {
    #[step(compensation = cancel)]
    async fn book(&self, seat: u32) -> u32 {
        seat
    }
    async fn cancel(&self, seat: u32) {
        let _ = seat;
    }
}

fn main() {}
