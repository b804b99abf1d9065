//! Draining on SIGTERM: the requests in flight are counted, so the process
//! can end as soon as the last one answered instead of sleeping the whole
//! grace period; once draining, answers close their connection.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The gateway's count of requests in flight, and whether it drains.
#[derive(Default)]
pub(super) struct Drain {
    in_flight: Arc<AtomicUsize>,
    draining: AtomicBool,
}

/// One request in flight, counted until its context is dropped (after its
/// log line).
pub(super) struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drain {
    /// Counts a new request.
    pub fn enter(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.in_flight.clone())
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn start(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}
