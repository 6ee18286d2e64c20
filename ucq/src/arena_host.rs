//! [`ArenaHost`]: every UCQ host trait over vcpd-abi's test arena, so tests
//! and benchmarks run producer and consumer against a simulated process.

use core::ptr::NonNull;

use vcpd_abi::UserMemory;
use vcpd_abi::arena::UserArena;

use crate::host::{ConsumerHost, UcqLocks, UserPageAlloc};
use crate::locks::HashLocks;

/// A simulated process (its arena) plus the kernel's UCQ locks.
#[derive(Debug)]
pub struct ArenaHost {
    /// The process's memory.
    pub arena: UserArena,
    /// The kernel-side page-switch locks.
    pub locks: HashLocks<16>,
}

impl ArenaHost {
    /// A host whose process has `user_bytes` of memory.
    pub fn new(user_bytes: usize) -> Self {
        Self {
            arena: UserArena::new(user_bytes),
            locks: HashLocks::new(),
        }
    }
}

// SAFETY: forwards to `UserArena`, which upholds the contract.
unsafe impl UserMemory for ArenaHost {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        self.arena.translate(addr, len)
    }
}

impl UserPageAlloc for ArenaHost {
    fn alloc_user_page(&self) -> Option<usize> {
        self.arena.alloc_page()
    }

    /// No budget beyond the arena's size: this host plays kernel and
    /// process at once but does not tell the kernel's counters when its
    /// process side frees a page (`UcqStats::page_returned`), so the
    /// default budget would count every page ever allocated. The arena
    /// itself bounds allocation (`OutOfPages`); budget tests wrap this host.
    fn ucq_page_budget(&self) -> u64 {
        u64::MAX
    }
}

impl UcqLocks for ArenaHost {
    fn with_ucq_lock<R>(&self, key: usize, f: impl FnOnce() -> R) -> R {
        self.locks.with_ucq_lock(key, f)
    }
}

impl ConsumerHost for ArenaHost {
    fn relax(&self) {
        // Host threads may outnumber cores: let the thread we wait for run.
        std::thread::yield_now();
    }

    fn free_page(&self, page: usize) {
        self.arena.free_page(page);
    }
}
