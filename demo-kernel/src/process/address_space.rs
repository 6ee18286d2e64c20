//! A process's address space: its own contiguous range of the user region,
//! with its own bounds check and page allocator.
//!
//! The user region ([`crate::platform::user_region`]) is one 48 MiB window of RAM set
//! aside for "user" memory. Each process gets a sub-range of it, and the
//! kernel's [`vcpd_abi::UserMemory`] implementation for that process
//! (proc_ops.rs) accepts only addresses inside *that* sub-range. So a
//! hostile process that writes another process's address (or a kernel
//! address) into its event queues gets the message dropped, exactly as it
//! would if the range were a real page-table mapping.
//!
//! The allocator hands out whole zeroed pages: the kernel asks for them when
//! a UCQ grows (`ucq::UserPageAlloc`), the process for its mailboxes and
//! queues (runtime.rs), and the process hands UCQ pages back when a queue
//! shrinks.

use core::ptr::NonNull;

use spin::Mutex;
use x86_64::instructions::interrupts;

use crate::platform::user_region::{self, PAGE_SIZE};

/// The most pages one address space holds (32 MiB).
pub const MAX_PAGES: usize = 8192;
const WORDS: usize = MAX_PAGES / 64;

/// A contiguous range of user pages owned by one process.
#[derive(Debug)]
pub struct UserSpace {
    base: usize,
    npages: usize,
    /// Bit `i % 64` of word `i / 64` is set while page `i` is allocated.
    used: Mutex<[u64; WORDS]>,
}

impl UserSpace {
    /// Reserves `npages` contiguous pages of the user region (zeroed).
    ///
    /// # Panics
    /// If `npages` exceeds [`MAX_PAGES`] or the region has no such run
    /// left: the demo sizes its processes to fit.
    pub fn new(npages: usize) -> Self {
        Self::new_guarded(npages, false).0
    }

    /// Like [`new`](Self::new), and with `guards` also reserves the page
    /// just below and the page just above the space, which belong to no
    /// process: their addresses (0 without guards). A scenario fills them
    /// with a pattern and checks that no send on this process's behalf
    /// changed them.
    pub fn new_guarded(npages: usize, guards: bool) -> (Self, [usize; 2]) {
        assert!(
            npages <= MAX_PAGES,
            "a UserSpace holds at most {MAX_PAGES} pages"
        );
        let extra = if guards { 2 } else { 0 };
        let start = user_region::alloc_range(npages + extra)
            .unwrap_or_else(|| panic!("user region: no {npages} contiguous pages left"));
        let base = if guards { start + PAGE_SIZE } else { start };
        let guard_pages = if guards {
            [start, base + npages * PAGE_SIZE]
        } else {
            [0, 0]
        };
        let space = Self {
            base,
            npages,
            used: Mutex::new([0; WORDS]),
        };
        (space, guard_pages)
    }

    /// The user addresses of the space.
    pub fn range(&self) -> core::ops::Range<usize> {
        self.base..self.base + self.npages * PAGE_SIZE
    }

    /// Whether `[addr, addr + len)` lies entirely inside this space; a range
    /// that wraps around never does.
    pub fn contains(&self, addr: usize, len: usize) -> bool {
        let r = self.range();
        addr.checked_add(len)
            .is_some_and(|end| r.contains(&addr) && end <= r.end)
    }

    /// The kernel pointer to `[addr, addr + len)` if the range is this
    /// space's: the process's bounds first, then the region's own check.
    pub fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        if self.contains(addr, len) {
            user_region::translate(addr, len)
        } else {
            None
        }
    }

    /// Allocates `n` contiguous zeroed pages; the address of the first.
    pub fn alloc_pages(&self, n: usize) -> Option<usize> {
        if n == 0 {
            return None;
        }
        let first = interrupts::without_interrupts(|| {
            let mut used = self.used.lock();
            let taken = |used: &[u64; WORDS], i: usize| used[i / 64] & (1 << (i % 64)) != 0;
            let mut start = 0;
            while start + n <= self.npages {
                match (start..start + n).find(|&i| taken(&used, i)) {
                    Some(t) => start = t + 1,
                    None => {
                        for i in start..start + n {
                            used[i / 64] |= 1 << (i % 64);
                        }
                        return Some(start);
                    }
                }
            }
            None
        })?;
        let addr = self.base + first * PAGE_SIZE;
        // SAFETY: the pages lie inside this space (so inside the reserved,
        // identity-mapped user region) and were free: no one uses them, and
        // the process cannot race on pages it has not been given yet.
        unsafe { core::ptr::write_bytes(addr as *mut u8, 0, n * PAGE_SIZE) };
        Some(addr)
    }

    /// Allocates one zeroed page.
    pub fn alloc_page(&self) -> Option<usize> {
        self.alloc_pages(1)
    }

    /// Returns a page. A page that is not one of this space's allocated
    /// pages is refused with a warning (the caller is the process, which
    /// may be wrong), never a crash.
    pub fn free_page(&self, addr: usize) {
        if !self.contains(addr, PAGE_SIZE) || addr % PAGE_SIZE != 0 {
            log::warn!("uspace: free_page({addr:#x}) is not a page of this process");
            return;
        }
        let i = (addr - self.base) / PAGE_SIZE;
        let was_used = interrupts::without_interrupts(|| {
            let mut used = self.used.lock();
            let bit = 1u64 << (i % 64);
            let was = used[i / 64] & bit != 0;
            used[i / 64] &= !bit;
            was
        });
        if !was_used {
            log::warn!("uspace: page {addr:#x} freed twice");
        }
    }

    /// Pages allocated now.
    pub fn used_pages(&self) -> usize {
        interrupts::without_interrupts(|| {
            self.used
                .lock()
                .iter()
                .map(|w| w.count_ones() as usize)
                .sum()
        })
    }
}
