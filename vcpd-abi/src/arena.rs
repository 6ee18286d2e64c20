//! A simulated user address range for host-side tests (feature `std`).
//!
//! [`UserArena`] owns one page-aligned mapping: a user range in the middle
//! and guard zones on both sides filled with a canary byte. Its
//! [`UserMemory`] check accepts exactly the user range minus freed pages,
//! so a producer that follows a bad pointer is refused;
//! [`UserArena::guards_intact`] proves afterwards that nothing wrote next to
//! the range either. User addresses are host addresses (an identity
//! mapping), so consumer code in the tests dereferences them directly, as a
//! process would.
//!
//! The arena is as hostile as real memory: [`free_page`](UserArena::free_page)
//! makes the page inaccessible (`mprotect(PROT_NONE)`, after
//! `madvise(MADV_DONTNEED)` drops its contents), so a use after free
//! faults (SIGSEGV) instead of reading stale bytes, and freed pages go to
//! the back of a quarantine: an address is reused only once
//! [`QUARANTINE_PAGES`] other pages have been freed after it, or when the
//! arena has no fresh page left. `mprotect` rather than `munmap`: the range
//! stays reserved, so no other mapping of the test process can land in a
//! freed page and make a stale access succeed. std has no API for either
//! call, hence the `libc` dependency of the `std` feature. Under Miri
//! (which has no `mprotect`) freed pages are only quarantined: Miri's own
//! checks catch accesses outside allocations, not to freed pages.

use core::ptr::NonNull;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::vec::Vec;

use core::sync::atomic::AtomicBool;

use crate::sync::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use crate::ucq::PAGE_SIZE;
use crate::umem::{SharedMem, UserMemory, UserMemoryExt};

/// Bytes of each guard zone.
pub const GUARD_BYTES: usize = 4 * PAGE_SIZE;
/// The byte guard zones are filled with.
pub const GUARD_CANARY: u8 = 0xA5;
/// Freed pages that must follow a freed page into the quarantine before
/// its address is handed out again (unless the arena has nothing fresh).
pub const QUARANTINE_PAGES: usize = 256;

/// A simulated process address range with guard zones.
#[derive(Debug)]
pub struct UserArena {
    base: NonNull<u8>,
    total: usize,
    user_start: usize,
    user_end: usize,
    bump: Mutex<usize>,
    /// Freed pages, oldest first.
    quarantine: Mutex<VecDeque<usize>>,
    /// One flag per user page: freed (inaccessible) now.
    freed: Vec<AtomicBool>,
    rejected: AtomicUsize,
    pages_out: AtomicUsize,
}

// SAFETY: the arena's memory is only accessed through atomics, `Racy`
// cells, or under its own mutexes; the raw base pointer is never aliased
// mutably.
unsafe impl Send for UserArena {}
// SAFETY: see `Send`.
unsafe impl Sync for UserArena {}

/// The host side of the mapping: libc's mmap family, or the allocator under
/// Miri.
mod map {
    use core::ptr::NonNull;

    use crate::ucq::PAGE_SIZE;

    /// Maps `len` zeroed, readable and writable bytes, page-aligned.
    pub(super) fn map(len: usize) -> Option<NonNull<u8>> {
        #[cfg(not(miri))]
        {
            // SAFETY: an anonymous private mapping at an address of the
            // kernel's choosing touches no existing memory.
            let p = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                None
            } else {
                NonNull::new(p.cast())
            }
        }
        #[cfg(miri)]
        {
            let layout = std::alloc::Layout::from_size_align(len, PAGE_SIZE).ok()?;
            // SAFETY: the layout has a non-zero size.
            NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
        }
    }

    /// Unmaps what [`map`] returned.
    ///
    /// # Safety
    /// `p` and `len` come from one [`map`] call, and nothing refers to the
    /// memory any more.
    pub(super) unsafe fn unmap(p: NonNull<u8>, len: usize) {
        #[cfg(not(miri))]
        // SAFETY: the caller passes a whole mapping no one refers to.
        unsafe {
            libc::munmap(p.as_ptr().cast(), len);
        }
        #[cfg(miri)]
        // SAFETY: as above, for the allocation `map` made.
        unsafe {
            std::alloc::dealloc(
                p.as_ptr(),
                std::alloc::Layout::from_size_align_unchecked(len, PAGE_SIZE),
            );
        }
    }

    /// Drops a page's contents and makes it inaccessible.
    ///
    /// # Safety
    /// `page` is a page of a live mapping that no reference covers.
    pub(super) unsafe fn revoke(page: *mut u8) {
        #[cfg(not(miri))]
        // SAFETY: the caller's page: a whole page of our mapping.
        unsafe {
            libc::madvise(page.cast(), PAGE_SIZE, libc::MADV_DONTNEED);
            let r = libc::mprotect(page.cast(), PAGE_SIZE, libc::PROT_NONE);
            assert_eq!(r, 0, "mprotect(PROT_NONE) failed");
        }
        #[cfg(miri)]
        let _ = page;
    }

    /// Makes a revoked page accessible again (zeroed).
    ///
    /// # Safety
    /// `page` was revoked and belongs to a live mapping.
    pub(super) unsafe fn restore(page: *mut u8) {
        #[cfg(not(miri))]
        // SAFETY: the caller's page: a whole page of our mapping.
        unsafe {
            let r = libc::mprotect(page.cast(), PAGE_SIZE, libc::PROT_READ | libc::PROT_WRITE);
            assert_eq!(r, 0, "mprotect(PROT_READ | PROT_WRITE) failed");
        }
        #[cfg(miri)]
        // SAFETY: the caller's page is part of the live allocation.
        unsafe {
            page.write_bytes(0, PAGE_SIZE);
        }
    }
}

impl UserArena {
    /// An arena with at least `user_bytes` of user memory (rounded up to pages).
    ///
    /// # Panics
    /// If the host mapping fails.
    pub fn new(user_bytes: usize) -> Self {
        let user_len = user_bytes.div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE;
        let total = user_len + 2 * GUARD_BYTES;
        let base = map::map(total).expect("arena mapping failed");
        // Consumers turn user addresses back into pointers, as a process
        // would; exposing the mapping's provenance makes that sound.
        let _ = base.as_ptr().expose_provenance();
        let start = base.as_ptr() as usize + GUARD_BYTES;
        // SAFETY: both guard zones lie inside the fresh mapping, which no
        // one else references yet.
        unsafe {
            base.as_ptr().write_bytes(GUARD_CANARY, GUARD_BYTES);
            base.as_ptr()
                .add(GUARD_BYTES + user_len)
                .write_bytes(GUARD_CANARY, GUARD_BYTES);
        }
        Self {
            base,
            total,
            user_start: start,
            user_end: start + user_len,
            bump: Mutex::new(start),
            quarantine: Mutex::new(VecDeque::new()),
            freed: (0..user_len / PAGE_SIZE)
                .map(|_| AtomicBool::new(false))
                .collect(),
            rejected: AtomicUsize::new(0),
            pages_out: AtomicUsize::new(0),
        }
    }

    /// The user range `[start, end)`.
    pub fn user_range(&self) -> core::ops::Range<usize> {
        self.user_start..self.user_end
    }

    /// Whether `[addr, addr + len)` lies inside the user range (freed
    /// pages included).
    pub fn contains(&self, addr: usize, len: usize) -> bool {
        addr >= self.user_start
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= self.user_end)
    }

    /// Whether any page of `[addr, addr + len)` (inside the range) is freed.
    fn touches_freed(&self, addr: usize, len: usize) -> bool {
        let first = (addr - self.user_start) / PAGE_SIZE;
        let last = (addr + len.max(1) - 1 - self.user_start) / PAGE_SIZE;
        self.freed[first..=last]
            .iter()
            .any(|f| f.load(Ordering::Acquire))
    }

    /// Whether the page at `page` is freed (inaccessible) now.
    pub fn is_freed(&self, page: usize) -> bool {
        self.contains(page, 1) && self.touches_freed(page, 1)
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

    /// Allocates a zeroed, page-aligned page: a fresh one while any is
    /// left, else the longest-freed one; a freed page also comes back once
    /// [`QUARANTINE_PAGES`] pages were freed after it.
    pub fn alloc_page(&self) -> Option<usize> {
        let reuse = {
            let mut q = self.quarantine.lock().unwrap_or_else(|e| e.into_inner());
            if q.len() > QUARANTINE_PAGES {
                q.pop_front()
            } else {
                None
            }
        };
        let page = match reuse.or_else(|| self.alloc(PAGE_SIZE, PAGE_SIZE)) {
            Some(p) => p,
            None => self
                .quarantine
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front()?,
        };
        let flag = &self.freed[(page - self.user_start) / PAGE_SIZE];
        if flag.load(Ordering::Acquire) {
            // SAFETY: a revoked page of our live mapping.
            unsafe { map::restore(self.base.as_ptr().wrapping_add(page - self.base_addr())) };
            flag.store(false, Ordering::Release);
        }
        self.pages_out.fetch_add(1, Ordering::Relaxed);
        Some(page)
    }

    fn base_addr(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// Returns a page to the arena: its contents are dropped and any later
    /// access faults until the arena hands the address out again. Addresses
    /// that are not page-aligned user pages, or already free, are ignored
    /// (and reported as `false`).
    pub fn free_page(&self, page: usize) -> bool {
        if page % PAGE_SIZE != 0 || !self.contains(page, PAGE_SIZE) {
            return false;
        }
        let flag = &self.freed[(page - self.user_start) / PAGE_SIZE];
        if flag.swap(true, Ordering::AcqRel) {
            return false;
        }
        // SAFETY: a whole page of our live mapping. The caller gives it up;
        // a test that still holds a reference into it is exactly what this
        // arena exists to catch (by a fault, not by reading stale data).
        unsafe { map::revoke(self.base.as_ptr().wrapping_add(page - self.base_addr())) };
        self.pages_out.fetch_sub(1, Ordering::Relaxed);
        self.quarantine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(page);
        true
    }

    /// Writes a word into user memory as the process would (tests use it to
    /// scribble). Returns `false` for an address outside the user range or
    /// in a freed page.
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
                // SAFETY: `off` lies inside the mapping (a guard zone, never
                // revoked); the read is volatile because a buggy writer may
                // race with it.
                unsafe { self.base.as_ptr().add(off).read_volatile() == GUARD_CANARY }
            })
    }
}

// SAFETY: the arena's user range is one live mapping owned by the arena
// for its whole life; `translate` returns pointers only into that range,
// never into a freed (inaccessible) page, with the identity mapping (so
// alignment is preserved), and the arena stores nothing it relies on
// inside the range. (A page the process frees while the kernel writes it
// faults, as it would on real hardware without a fault handler; the
// protocols never do that.)
unsafe impl UserMemory for UserArena {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        if self.contains(addr, len) && !self.touches_freed(addr, len) {
            // Derive from `base` to keep the mapping's provenance.
            NonNull::new(self.base.as_ptr().wrapping_add(addr - self.base_addr()))
        } else {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl Drop for UserArena {
    fn drop(&mut self) {
        // SAFETY: `base` and `total` come from one `map` call, and every
        // reference into the arena borrows `self`, so none outlives it.
        unsafe { map::unmap(self.base, self.total) }
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
    fn freed_pages_are_refused_quarantined_then_recycled_zeroed() {
        let arena = UserArena::new(4 * PAGE_SIZE);
        let p = arena.alloc_page().unwrap();
        assert_eq!(p % PAGE_SIZE, 0);
        assert!(arena.write_u64(p + 64, 0xdead_beef));
        assert_eq!(arena.pages_out(), 1);
        assert!(arena.free_page(p));
        assert!(!arena.free_page(p), "double free refused");
        assert!(!arena.free_page(p + 8), "unaligned page refused");
        assert!(arena.is_freed(p));
        assert!(
            arena.translate(p + 64, 8).is_none(),
            "a freed page is not user memory"
        );
        assert!(!arena.write_u64(p, 1));
        // Fresh pages first: the freed address waits in quarantine.
        let fresh: Vec<_> = core::iter::from_fn(|| arena.alloc(PAGE_SIZE, PAGE_SIZE)).collect();
        assert_eq!(fresh.len(), 3);
        assert!(!fresh.contains(&p));
        // Nothing fresh is left: the longest-freed page comes back, zeroed.
        let q = arena.alloc_page().unwrap();
        assert_eq!(q, p);
        assert!(!arena.is_freed(q));
        assert_eq!(
            arena
                .user_ref::<AtomicU64>(q + 64)
                .unwrap()
                .load(Ordering::Relaxed),
            0
        );
        assert!(arena.alloc_page().is_none(), "exhausted arena says so");
    }

    #[test]
    fn a_freed_address_waits_for_the_quarantine() {
        let arena = UserArena::new((QUARANTINE_PAGES + 8) * PAGE_SIZE);
        let first = arena.alloc_page().unwrap();
        assert!(arena.free_page(first));
        for _ in 0..QUARANTINE_PAGES {
            let p = arena.alloc_page().unwrap();
            assert_ne!(p, first, "reused before the quarantine passed");
            assert!(arena.free_page(p));
        }
        assert_eq!(
            arena.alloc_page(),
            Some(first),
            "oldest freed page comes back"
        );
    }

    /// The point of the arena: a use after free faults. Run in a child
    /// process (this test re-executes its own binary), which must die of
    /// SIGSEGV.
    #[cfg(not(miri))]
    #[test]
    fn use_after_free_faults() {
        const CHILD: &str = "VCPD_ARENA_UAF_CHILD";
        if std::env::var_os(CHILD).is_some() {
            let arena = UserArena::new(2 * PAGE_SIZE);
            let p = arena.alloc_page().unwrap();
            let w = core::ptr::with_exposed_provenance::<AtomicU64>(p);
            arena.free_page(p);
            // SAFETY: deliberately not: this is the use after free the
            // arena must turn into a fault.
            let v = unsafe { (*w).load(Ordering::Relaxed) };
            std::process::exit(i32::from(v == 0));
        }
        let exe = std::env::current_exe().unwrap();
        let status = std::process::Command::new(exe)
            .args([
                "--exact",
                "arena::tests::use_after_free_faults",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .status()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
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
