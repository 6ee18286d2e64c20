//! The process's `malloc`, as the scenarios' set-up code uses it.
//!
//! The scenarios set a process's queues up from the kernel CPU before its
//! vcores run, playing the process's main thread: they carve event
//! queues, CEQ arrays and the like out of the process's pages (mapped into
//! it, zeroed, never freed: the demo's processes set their queues up once
//! per scenario) and write them through the kernel's identity map, as the
//! main thread would through its own mapping. [`Runtime`] is also the
//! `VcoreRuntime` of that set-up code (`event_core::recv::setup` asks it
//! for UCQ pages); the vcores' own runtime, in ring 3, is `user::UserRt`.

use spin::Mutex;
use vcpd_abi::SharedMem;
use x86_64::instructions::interrupts;

use event_core::recv::VcoreRuntime;

use crate::platform::user_region::PAGE_SIZE;
use crate::process;

/// A process's runtime (one per process, inside its [`process::Process`]).
#[derive(Debug)]
pub struct Runtime {
    pid: usize,
    /// The bump allocator: the current page and how much of it is used.
    heap: Mutex<(usize, usize)>,
}

impl Runtime {
    /// The runtime of process `pid`.
    pub const fn new(pid: usize) -> Self {
        Self {
            pid,
            heap: Mutex::new((0, PAGE_SIZE)),
        }
    }

    fn process(&self) -> &'static process::Process {
        process::get(self.pid)
    }

    /// Allocates `size` zeroed bytes aligned to `align` (at most a page) in
    /// the process's memory; their user address.
    fn alloc_bytes(&self, size: usize, align: usize) -> Option<usize> {
        if size > PAGE_SIZE {
            // Whole pages, page-aligned (so any alignment up to a page).
            return self.process().space().alloc_pages(size.div_ceil(PAGE_SIZE));
        }
        interrupts::without_interrupts(|| {
            let mut heap = self.heap.lock();
            let (page, used) = *heap;
            let start = used.next_multiple_of(align);
            if page != 0 && start + size <= PAGE_SIZE {
                *heap = (page, start + size);
                return Some(page + start);
            }
            let page = self.process().space().alloc_page()?;
            *heap = (page, size);
            Some(page)
        })
    }

    /// A zeroed `T` in the process's memory (its `malloc`).
    pub fn alloc<T: SharedMem>(&self) -> Option<&'static T> {
        let addr = self.alloc_bytes(size_of::<T>(), align_of::<T>())?;
        // SAFETY: `addr` is a fresh, zeroed, suitably aligned block of the
        // process's space, which stays mapped for the whole run (address
        // spaces are never released); `T: SharedMem` is valid all-zero and
        // stays sound while kernel and vcores write the bytes concurrently.
        Some(unsafe { &*core::ptr::with_exposed_provenance::<T>(addr) })
    }

    /// `n` zeroed `T`s in the process's memory.
    pub fn alloc_slice<T: SharedMem>(&self, n: usize) -> Option<&'static [T]> {
        let addr = self.alloc_bytes(size_of::<T>().checked_mul(n)?, align_of::<T>())?;
        // SAFETY: as in `alloc`, for `n` consecutive values.
        Some(unsafe {
            core::slice::from_raw_parts(core::ptr::with_exposed_provenance::<T>(addr), n)
        })
    }
}

impl VcoreRuntime for Runtime {
    fn relax(&self) {
        core::hint::spin_loop();
    }

    fn alloc_page(&self) -> Option<usize> {
        self.process().space().alloc_page()
    }

    fn free_page(&self, page: usize) {
        let _ = self.process().free_user_page(page);
    }
}
