//! What the UCQ needs from its environment.
//!
//! Producer side (the kernel): [`UserMemory`] to check every address,
//! [`UserPageAlloc`] for new pages, and [`UcqLocks`] for the page-switch
//! lock. Consumer side (the process): [`ConsumerHost`] for spin-wait
//! relaxation and for handing back surplus pages.
//!
//! None of these is an `unsafe trait`: the producer validates every page it
//! is given through [`UserMemory`] (itself an `unsafe trait`), so a broken
//! allocator or lock can corrupt the process's queue but never the kernel.

use vcpd_abi::UserMemory;

/// Default of [`UserPageAlloc::ucq_page_budget`]: Akaros warns once a
/// UCQ has more than 1000 extra pages.
pub const UCQ_PAGE_BUDGET: u64 = 1000;

/// Allocation of fresh user pages for a growing UCQ.
pub trait UserPageAlloc {
    /// Maps a zeroed, page-aligned, writable page into the current process
    /// and returns its user address, or `None` when out of memory.
    fn alloc_user_page(&self) -> Option<usize>;

    /// How many pages the UCQ producers may hold allocated for the process
    /// at once, counted in the [`UcqStats`](crate::UcqStats) the sends are
    /// given (so per process when the host keeps one per process). Past it
    /// a send that needs a new page drops its message
    /// ([`SendError::PageBudget`](crate::SendError::PageBudget)) instead of
    /// allocating: a process that keeps corrupting `prod_idx` cannot make
    /// the kernel allocate without bound. The count is kernel memory (the
    /// process's `nr_extra_pgs` is not trusted); the host lowers it with
    /// [`UcqStats::page_returned`](crate::UcqStats::page_returned) when the
    /// process gives a page back. Default: [`UCQ_PAGE_BUDGET`].
    fn ucq_page_budget(&self) -> u64 {
        UCQ_PAGE_BUDGET
    }
}

/// The producers' page-switch lock, kept in the kernel and keyed by the
/// UCQ's address (a lock in user memory could be held forever by the process).
pub trait UcqLocks {
    /// Runs `f` while holding the lock for `key`. Different keys may share a
    /// lock (a hash lock is fine); the lock must not be held across sends.
    /// If sends can happen with interrupts enabled and interrupt handlers can
    /// also send, the implementation must disable interrupts while held.
    fn with_ucq_lock<R>(&self, key: usize, f: impl FnOnce() -> R) -> R;

    /// The index of the CPU this send runs on, if the kernel numbers them
    /// (from 0 up): [`UcqStats`](crate::UcqStats) then counts the send
    /// with a plain increment on that CPU's own cache line rather than a
    /// locked one on a line every sending CPU writes. Two sends must not
    /// run at once with the same index (a kernel keeps preemption, and
    /// interrupts that send, off around a send, or gives each context its
    /// own index); if they do, a count may come out low, nothing else.
    /// Indices of [`UCQ_STAT_SHARDS`](crate::UCQ_STAT_SHARDS) or more share
    /// the common, atomic counter. Default: `None`, the common counter.
    fn cpu_index(&self) -> Option<usize> {
        None
    }
}

/// Everything the producer needs.
pub trait ProducerHost: UserMemory + UserPageAlloc + UcqLocks {}
impl<T: UserMemory + UserPageAlloc + UcqLocks + ?Sized> ProducerHost for T {}

/// What the consumer needs from the process's runtime.
pub trait ConsumerHost {
    /// Called in every iteration of a consumer spin-wait (waiting for a
    /// producer to finish a message or another consumer to finish a page).
    /// A runtime may check there whether the vcore it waits for was preempted.
    fn relax(&self) {
        vcpd_abi::sync::spin_loop();
    }

    /// Takes back a page the queue no longer needs (unmap or recycle it).
    fn free_page(&self, page: usize);

    /// The vcore this consumer runs on, recorded as the holder of the
    /// consumers' lock (`u_lock`, Akaros's `spin_pdr_lock` encoding) so a
    /// waiter can tell whom it waits for. Must not be `0xffffffff` (the
    /// unlocked value). Default: 0.
    fn vcore_id(&self) -> u32 {
        0
    }
}
