//! Producer-side counters a kernel can read.

use core::sync::atomic::{AtomicU64, Ordering};

/// CEQ producer counters (plain `core` atomics in kernel memory).
#[derive(Debug, Default)]
pub struct CeqStats {
    /// Sends that also posted the index to the ring.
    pub ring_posts: AtomicU64,
    /// Sends that found the index already posted (pure coalescing).
    pub already_posted: AtomicU64,
    /// Sends that could not reserve a ring slot and flagged an overflow.
    pub overflows: AtomicU64,
    /// `max_event_ever` updates abandoned after too many lost races (only a
    /// process writing the field itself can cause this).
    pub max_event_contention: AtomicU64,
    /// Sends dropped: `ev_type >= nr_events`.
    pub dropped_out_of_range: AtomicU64,
    /// Sends dropped: the entry or ring slot was not user memory.
    pub dropped_bad_addr: AtomicU64,
    /// Sends dropped: unknown coalescing operation.
    pub dropped_bad_op: AtomicU64,
}

/// A plain snapshot of [`CeqStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // mirrors the documented fields of `CeqStats`
pub struct CeqStatsSnapshot {
    pub coalesced: u64,
    pub ring_posts: u64,
    pub already_posted: u64,
    pub overflows: u64,
    pub max_event_contention: u64,
    pub dropped_out_of_range: u64,
    pub dropped_bad_addr: u64,
    pub dropped_bad_op: u64,
}

impl CeqStats {
    /// All counters zero.
    pub const fn new() -> Self {
        Self {
            ring_posts: AtomicU64::new(0),
            already_posted: AtomicU64::new(0),
            overflows: AtomicU64::new(0),
            max_event_contention: AtomicU64::new(0),
            dropped_out_of_range: AtomicU64::new(0),
            dropped_bad_addr: AtomicU64::new(0),
            dropped_bad_op: AtomicU64::new(0),
        }
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> CeqStatsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CeqStatsSnapshot {
            coalesced: r(&self.ring_posts) + r(&self.already_posted) + r(&self.overflows),
            ring_posts: r(&self.ring_posts),
            already_posted: r(&self.already_posted),
            overflows: r(&self.overflows),
            max_event_contention: r(&self.max_event_contention),
            dropped_out_of_range: r(&self.dropped_out_of_range),
            dropped_bad_addr: r(&self.dropped_bad_addr),
            dropped_bad_op: r(&self.dropped_bad_op),
        }
    }

    /// Events coalesced into their entry: every successful send (the sum
    /// of its three outcomes, so a send pays for one counter, not two).
    pub fn coalesced(&self) -> u64 {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        r(&self.ring_posts) + r(&self.already_posted) + r(&self.overflows)
    }

    /// Total messages dropped, for any reason.
    pub fn dropped(&self) -> u64 {
        let s = self.snapshot();
        s.dropped_out_of_range + s.dropped_bad_addr + s.dropped_bad_op
    }
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
