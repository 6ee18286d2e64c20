//! A simulated user address range for host-side tests (feature `std`).
//!
//! [`UserArena`] owns one page-aligned allocation: a user range in the
//! middle and guard zones on both sides filled with a canary byte. Its
//! [`UserMemory`] check accepts exactly the user range, so a producer that
//! follows a bad pointer is refused; [`UserArena::guards_intact`] proves
//! afterwards that nothing wrote next to the range either. User addresses
//! are host addresses (an identity mapping), so consumer code in the tests
//! dereferences them directly, as a process would.

use core::ptr::NonNull;
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::sync::Mutex;
use std::vec::Vec;

use crate::sync::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use crate::ucq::PAGE_SIZE;
use crate::umem::{SharedMem, UserMemory, UserMemoryExt};

/// Bytes of each guard zone.
pub const GUARD_BYTES: usize = 4 * PAGE_SIZE;
/// The byte guard zones are filled with.
pub const GUARD_CANARY: u8 = 0xA5;

/// A simulated process address range with guard zones.
#[derive(Debug)]
pub struct UserArena {
    base: NonNull<u8>,
    layout: Layout,
    user_start: usize,
    user_end: usize,
    bump: Mutex<usize>,
    free_pages: Mutex<Vec<usize>>,
    rejected: AtomicUsize,
    pages_out: AtomicUsize,
}

// SAFETY: the arena's memory is only accessed through atomics, `Racy`
// cells, or under its own mutexes; the raw base pointer is never aliased
// mutably.
unsafe impl Send for UserArena {}
// SAFETY: see `Send`.
unsafe impl Sync for UserArena {}

impl UserArena {
    /// An arena with at least `user_bytes` of user memory (rounded up to pages).
    ///
    /// # Panics
    /// If the host allocation fails.
    pub fn new(user_bytes: usize) -> Self {
        let user_len = user_bytes.div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE;
        let layout =
            Layout::from_size_align(user_len + 2 * GUARD_BYTES, PAGE_SIZE).expect("arena layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let base = NonNull::new(raw).expect("arena allocation failed");
        // Consumers turn user addresses back into pointers, as a process
        // would; exposing the allocation's provenance makes that sound.
        let _ = base.as_ptr().expose_provenance();
        let start = base.as_ptr() as usize + GUARD_BYTES;
        // SAFETY: both guard zones lie inside the fresh allocation, which no
        // one else references yet.
        unsafe {
            base.as_ptr().write_bytes(GUARD_CANARY, GUARD_BYTES);
            base.as_ptr()
                .add(GUARD_BYTES + user_len)
                .write_bytes(GUARD_CANARY, GUARD_BYTES);
        }
        Self {
            base,
            layout,
            user_start: start,
            user_end: start + user_len,
            bump: Mutex::new(start),
            free_pages: Mutex::new(Vec::new()),
            rejected: AtomicUsize::new(0),
            pages_out: AtomicUsize::new(0),
        }
    }

    /// The user range `[start, end)`.
    pub fn user_range(&self) -> core::ops::Range<usize> {
        self.user_start..self.user_end
    }

    /// Whether `[addr, addr + len)` lies inside the user range.
    pub fn contains(&self, addr: usize, len: usize) -> bool {
        addr >= self.user_start
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= self.user_end)
    }

    /// How many checks the arena refused.
    pub fn rejected_checks(&self) -> usize {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Pages handed out by [`alloc_page`](Self::alloc_page) and not freed.
    pub fn pages_out(&self) -> usize {
        self.pages_out.load(Ordering::Relaxed)
    }

    /// Allocates `len` zeroed bytes aligned to `align` (a power of two);
    /// returns the user address, or `None` when the arena is full.
    pub fn alloc(&self, len: usize, align: usize) -> Option<usize> {
        let mut next = self.bump.lock().unwrap_or_else(|e| e.into_inner());
        let start = next.checked_next_multiple_of(align.max(1))?;
        let end = start.checked_add(len.max(1))?;
        if end > self.user_end {
            return None;
        }
        *next = end;
        Some(start)
    }

    /// Allocates a zeroed `T` in user memory.
    pub fn alloc_zeroed<T: SharedMem>(&self) -> Option<&T> {
        let addr = self.alloc(core::mem::size_of::<T>(), core::mem::align_of::<T>())?;
        self.user_ref::<T>(addr)
    }

    /// Allocates a zeroed array of `n` `T`s in user memory.
    pub fn alloc_slice<T: SharedMem>(&self, n: usize) -> Option<&[T]> {
        let len = core::mem::size_of::<T>().checked_mul(n)?;
        let addr = self.alloc(len, core::mem::align_of::<T>())?;
        let first = self.translate(addr, len.max(1))?;
        // SAFETY: `translate` returned `len` bytes of the arena (alive as long
        // as `&self`), aligned for `T` by `alloc`; zeroed memory is a valid
        // `T: SharedMem`, and shared references stay sound under concurrent
        // writes to such types.
        Some(unsafe { core::slice::from_raw_parts(first.cast::<T>().as_ptr(), n) })
    }

    /// Allocates a zeroed, page-aligned page; reuses freed pages.
    pub fn alloc_page(&self) -> Option<usize> {
        let page = match self
            .free_pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
        {
            Some(p) => {
                // Zero through one checked view of the page (the process may
                // still scribble on it, so atomics, not a memset).
                let words = self.user_ref::<[AtomicU64; PAGE_SIZE / 8]>(p)?;
                for w in words {
                    w.store(0, Ordering::Relaxed);
                }
                Some(p)
            }
            None => self.alloc(PAGE_SIZE, PAGE_SIZE),
        }?;
        self.pages_out.fetch_add(1, Ordering::Relaxed);
        Some(page)
    }

    /// Returns a page to the arena. Addresses that are not page-aligned
    /// user pages are ignored (and reported as `false`).
    pub fn free_page(&self, page: usize) -> bool {
        if page % PAGE_SIZE != 0 || !self.contains(page, PAGE_SIZE) {
            return false;
        }
        self.pages_out.fetch_sub(1, Ordering::Relaxed);
        self.free_pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(page);
        true
    }

    /// Writes a word into user memory as the process would (tests use it to
    /// scribble). Returns `false` for an address outside the user range.
    pub fn write_u64(&self, addr: usize, value: u64) -> bool {
        match self.user_ref::<AtomicU64>(addr) {
            Some(w) => {
                w.store(value, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Writes a byte into user memory as the process would.
    pub fn write_u8(&self, addr: usize, value: u8) -> bool {
        match self.user_ref::<AtomicU8>(addr) {
            Some(b) => {
                b.store(value, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Whether both guard zones still hold only the canary.
    pub fn guards_intact(&self) -> bool {
        let after = GUARD_BYTES + (self.user_end - self.user_start);
        (0..GUARD_BYTES)
            .chain(after..after + GUARD_BYTES)
            .all(|off| {
                // SAFETY: `off` lies inside the allocation (a guard zone); the
                // read is volatile because a buggy writer may race with it.
                unsafe { self.base.as_ptr().add(off).read_volatile() == GUARD_CANARY }
            })
    }
}

// SAFETY: the arena's user range is one live allocation owned by the arena
// for its whole life; `translate` returns pointers only into that range,
// with the identity mapping (so alignment is preserved), and the arena
// itself stores nothing it relies on inside the range.
unsafe impl UserMemory for UserArena {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        if self.contains(addr, len) {
            // Derive from `base` to keep the allocation's provenance.
            NonNull::new(
                self.base
                    .as_ptr()
                    .wrapping_add(addr - self.base.as_ptr() as usize),
            )
        } else {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl Drop for UserArena {
    fn drop(&mut self) {
        // SAFETY: `base` came from `alloc_zeroed` with `layout`, and every
        // reference into the arena borrows `self`, so none outlives it.
        unsafe { dealloc(self.base.as_ptr(), self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ucq::Ucq;

    #[test]
    fn check_accepts_exactly_the_user_range() {
        let arena = UserArena::new(3 * PAGE_SIZE);
        let r = arena.user_range();
        assert_eq!(r.end - r.start, 3 * PAGE_SIZE);
        assert!(arena.translate(r.start, 1).is_some());
        assert!(arena.translate(r.end - 8, 8).is_some());
        assert!(arena.translate(r.start - 1, 1).is_none());
        assert!(arena.translate(r.end - 8, 9).is_none());
        assert!(
            arena.translate(usize::MAX - 3, 8).is_none(),
            "wrapping range must be refused"
        );
        assert!(arena.translate(0, 8).is_none());
        assert_eq!(arena.rejected_checks(), 4);
    }

    #[test]
    fn user_ref_checks_null_alignment_and_bounds() {
        let arena = UserArena::new(PAGE_SIZE);
        let start = arena.user_range().start;
        assert!(arena.user_ref::<Ucq>(start).is_some());
        assert!(arena.user_ref::<Ucq>(start + 4).is_none(), "misaligned");
        assert!(arena.user_ref::<Ucq>(0).is_none(), "null");
        assert!(
            arena.user_ref::<Ucq>(arena.user_range().end - 8).is_none(),
            "straddles the end"
        );
        assert!(
            arena.user_elem::<AtomicU64>(start, usize::MAX).is_none(),
            "overflowing index"
        );
    }

    #[test]
    fn pages_are_zeroed_aligned_and_recycled() {
        let arena = UserArena::new(4 * PAGE_SIZE);
        let p = arena.alloc_page().unwrap();
        assert_eq!(p % PAGE_SIZE, 0);
        assert!(arena.write_u64(p + 64, 0xdead_beef));
        assert_eq!(arena.pages_out(), 1);
        assert!(arena.free_page(p));
        assert!(!arena.free_page(p + 8), "unaligned page refused");
        let q = arena.alloc_page().unwrap();
        assert_eq!(q, p, "freed page is reused");
        assert_eq!(
            arena
                .user_ref::<AtomicU64>(q + 64)
                .unwrap()
                .load(Ordering::Relaxed),
            0
        );
        while arena.alloc_page().is_some() {}
        assert!(arena.alloc(1, 1).is_none(), "exhausted arena says so");
    }

    #[test]
    fn guard_zones_detect_out_of_range_writes() {
        let arena = UserArena::new(PAGE_SIZE);
        assert!(arena.guards_intact());
        assert!(
            !arena.write_u64(arena.user_range().end, 1),
            "write_u64 refuses the guard"
        );
        // Play a buggy kernel that writes past the range without checking.
        let past_end = arena.user_range().end + 16;
        // SAFETY: the guard zone is part of the arena's allocation.
        unsafe { core::ptr::with_exposed_provenance_mut::<u8>(past_end).write_volatile(0) };
        assert!(!arena.guards_intact());
    }
}
