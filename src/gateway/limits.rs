//! The bytes of request bodies held by all requests at once
//! (`server.max_buffered`).
//!
//! A request leases the bytes its body may take before it reads a byte of
//! it: its whole `Content-Length`, or, for a chunked body, each growth of its
//! buffer as the bytes arrive. A lease that would take the total past the
//! bound is refused (`503 overloaded`); a lease is given back when it is
//! dropped, that is when the request (and its body) ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The shared bound and what is held against it.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    held: AtomicUsize,
    max: usize,
}

impl BodyBudget {
    /// A budget of `max` bytes, none held.
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(BodyBudget {
            held: AtomicUsize::new(0),
            max,
        })
    }

    /// Bytes held by leases now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn take(&self, n: usize) -> bool {
        n == 0
            || self
                .held
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                    h.checked_add(n).filter(|total| *total <= self.max)
                })
                .is_ok()
    }

    /// A lease of `n` bytes, or `None` when they would pass the bound.
    pub(crate) fn lease(self: &Arc<Self>, n: usize) -> Option<Lease> {
        self.take(n).then(|| Lease {
            budget: self.clone(),
            bytes: n,
        })
    }
}

/// Bytes held against a [`BodyBudget`] until dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl Lease {
    /// Grows the lease to at least `n` bytes; `false` (and unchanged) when
    /// that would pass the bound.
    pub(crate) fn grow_to(&mut self, n: usize) -> bool {
        if n <= self.bytes {
            return true;
        }
        if self.budget.take(n - self.bytes) {
            self.bytes = n;
            true
        } else {
            false
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_bounded_and_given_back() {
        let b = BodyBudget::new(100);
        let mut a = b.lease(60).unwrap();
        assert!(b.lease(41).is_none());
        let c = b.lease(40).unwrap();
        assert_eq!(b.held(), 100);
        assert!(!a.grow_to(61));
        drop(c);
        assert!(a.grow_to(100));
        assert!(a.grow_to(50)); // never shrinks
        assert_eq!(b.held(), 100);
        drop(a);
        assert_eq!(b.held(), 0);
        // Nothing held by an empty lease, even on a full budget.
        let full = b.lease(100).unwrap();
        assert!(b.lease(0).is_some());
        drop(full);
    }
}
