//! Producer-side counters a kernel can read (per process or global).

use core::sync::atomic::{AtomicU64, Ordering};

/// Per-CPU shards of [`UcqStats`]'s `posted` count (CPU indices from
/// [`UcqLocks::cpu_index`](crate::UcqLocks::cpu_index) below this).
pub const UCQ_STAT_SHARDS: usize = 32;

/// One CPU's count of posted messages, on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Shard(AtomicU64);

/// UCQ producer counters. Plain `core` atomics in kernel memory (never
/// model-checked: they are statistics, not part of the protocol).
///
/// The one counter every send writes, the count of posted messages, is
/// kept per CPU when the host says which CPU a send runs on
/// ([`UcqLocks::cpu_index`](crate::UcqLocks::cpu_index)): each CPU then
/// makes a plain increment on a cache line of its own instead of a locked
/// read-modify-write on one that every CPU sending to the process writes
/// (as event-core's own counters do). Read it with [`posted`](Self::posted)
/// or [`snapshot`](Self::snapshot). That is exact as long as two sends
/// never run at once with the same CPU index (the contract of
/// `cpu_index`); if they do, the count may come out low, nothing else.
/// Without an index a send takes the shared, atomic counter.
#[derive(Debug, Default)]
pub struct UcqStats {
    /// Messages written into a container and published by sends whose
    /// host gives no CPU index (or one of [`UCQ_STAT_SHARDS`] or more).
    /// [`posted`](Self::posted) is the total.
    pub posted: AtomicU64,
    /// Sends that went through the page-switch lock.
    pub slow_paths: AtomicU64,
    /// Page switches performed (old page linked to a new one).
    pub page_switches: AtomicU64,
    /// Page switches that reused the process's spare page.
    pub spares_used: AtomicU64,
    /// Pages newly allocated by the kernel.
    pub pages_allocated: AtomicU64,
    /// Messages dropped because the queue was not initialised.
    pub dropped_not_ready: AtomicU64,
    /// Messages dropped because an address in the queue failed its check.
    pub dropped_bad_addr: AtomicU64,
    /// Messages dropped because no page could be allocated.
    pub dropped_no_memory: AtomicU64,
    /// Messages dropped because the page budget was spent.
    pub dropped_page_budget: AtomicU64,
    /// Pages allocated and not (yet) reported returned: what the page
    /// budget limits.
    pub pages_held: AtomicU64,
    /// `posted`, per CPU index.
    posted_per_cpu: [Shard; UCQ_STAT_SHARDS],
}

/// A plain snapshot of [`UcqStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // mirrors the documented fields of `UcqStats`
pub struct UcqStatsSnapshot {
    pub posted: u64,
    pub slow_paths: u64,
    pub page_switches: u64,
    pub spares_used: u64,
    pub pages_allocated: u64,
    pub dropped_not_ready: u64,
    pub dropped_bad_addr: u64,
    pub dropped_no_memory: u64,
    pub dropped_page_budget: u64,
    pub pages_held: u64,
}

impl UcqStats {
    /// All counters zero.
    pub const fn new() -> Self {
        Self {
            posted: AtomicU64::new(0),
            slow_paths: AtomicU64::new(0),
            page_switches: AtomicU64::new(0),
            spares_used: AtomicU64::new(0),
            pages_allocated: AtomicU64::new(0),
            dropped_not_ready: AtomicU64::new(0),
            dropped_bad_addr: AtomicU64::new(0),
            dropped_no_memory: AtomicU64::new(0),
            dropped_page_budget: AtomicU64::new(0),
            pages_held: AtomicU64::new(0),
            posted_per_cpu: [const { Shard(AtomicU64::new(0)) }; UCQ_STAT_SHARDS],
        }
    }

    /// Messages posted, summed over CPUs.
    pub fn posted(&self) -> u64 {
        self.posted_per_cpu
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .fold(self.posted.load(Ordering::Relaxed), u64::wrapping_add)
    }

    /// Counts one posted message sent from CPU `cpu`.
    #[inline]
    pub(crate) fn count_posted(&self, cpu: Option<usize>) {
        match cpu.and_then(|c| self.posted_per_cpu.get(c)) {
            Some(shard) => {
                // Only CPU `cpu` writes its shard, and not two sends at once
                // (`cpu_index`'s contract): a plain increment is exact, and
                // saves a locked instruction on every send.
                let v = &shard.0;
                v.store(v.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
            }
            None => bump(&self.posted),
        }
    }

    /// The host saw the process give back a page the producers allocated
    /// (e.g. the process unmapped it): one more may be allocated.
    pub fn page_returned(&self) {
        let _ = self
            .pages_held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| h.checked_sub(1));
    }

    /// Charges one page against `budget`; `false` when it is spent. A CAS
    /// loop on kernel memory: only other kernel threads contend.
    pub(crate) fn charge_page(&self, budget: u64) -> bool {
        self.pages_held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                (h < budget).then_some(h + 1)
            })
            .is_ok()
    }

    /// Reads every counter (each individually; not one atomic snapshot).
    pub fn snapshot(&self) -> UcqStatsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        UcqStatsSnapshot {
            posted: self.posted(),
            slow_paths: r(&self.slow_paths),
            page_switches: r(&self.page_switches),
            spares_used: r(&self.spares_used),
            pages_allocated: r(&self.pages_allocated),
            dropped_not_ready: r(&self.dropped_not_ready),
            dropped_bad_addr: r(&self.dropped_bad_addr),
            dropped_no_memory: r(&self.dropped_no_memory),
            dropped_page_budget: r(&self.dropped_page_budget),
            pages_held: r(&self.pages_held),
        }
    }

    /// Total messages dropped, for any reason.
    pub fn dropped(&self) -> u64 {
        let s = self.snapshot();
        s.dropped_not_ready + s.dropped_bad_addr + s.dropped_no_memory + s.dropped_page_budget
    }
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
