//! Request ids.

/// A request id nobody can predict: 128 bits of a keyed hash (SipHash, with
/// a key drawn from the OS once per process) over a counter, so ids say
/// nothing about the request volume and cost no syscall each.
pub(crate) fn new_request_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static KEY: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let key = KEY.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hi = key.hash_one((n, 0u8));
    let lo = key.hash_one((n, 1u8));
    format!("{hi:016x}{lo:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_not_sequential() {
        let ids: Vec<String> = (0..1000).map(|_| new_request_id()).collect();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(ids.iter().all(|id| id.len() == 32));
        // Consecutive ids share no long prefix, unlike prefix + counter.
        let shared = ids.windows(2).filter(|w| w[0][..16] == w[1][..16]).count();
        assert_eq!(shared, 0);
    }
}
