//! A process's address space: its own page tables, its pages, and the
//! check the kernel applies to every address the process hands it.
//!
//! **Memory.** Each process owns a contiguous run of the user region
//! (platform/user_region.rs), reserved when it is created and never given
//! to anyone else. A page of it is mapped at its own physical address, so a
//! user address is the physical address is the kernel's pointer to the
//! byte: the kernel reaches process memory through its identity map.
//!
//! **Page tables** (`x86_64`'s [`PageTable`], and its [`OffsetPageTable`]
//! with offset 0 — the identity map — as the [`Mapper`] of user pages):
//! - the kernel: everything the boot tables map, supervisor-only, so
//!   interrupts and system calls run on the process's tables unchanged
//!   (the 2 MiB pages and the upper page directories are the boot tables'
//!   own entries); the first MiBs, which hold the image, in 4 KiB pages:
//!   - the image's text user-readable and executable but read-only, its
//!     read-only data user-readable: ring 3 runs the same binary (the
//!     choice, and why, in `linker.ld` and `user/mod.rs`);
//!   - `.user_data` user-writable, in the cooperative processes only;
//!   - everything else (kernel data and stacks, the frame allocator's
//!     frames, page tables, low memory) supervisor-only; page 0 unmapped;
//! - the process's own pages: user-writable, no-execute, mapped when first
//!   allocated and never unmapped while the process lives (a freed page
//!   returns to the process's pool, still mapped), so a pointer
//!   [`translate`](AddressSpace::translate) returned stays valid on every
//!   CPU that runs this process;
//! - nothing else of the user region: other processes' pages and the guard
//!   pages are not mapped at all.
//!
//! A CPU running this process's tables therefore reaches this process's
//! memory and the kernel's, and no other process's: kernel code in a system
//! call or interrupt of this process touches only this process's memory
//! (`ProcOps::with_address_space` switches to the kernel's tables if ever
//! it must touch another's).
//!
//! **The check** ([`AddressSpace::translate`]) walks these tables in
//! software, level by level, as the MMU does for a ring-3 write: every page
//! of the range must be present, user-accessible and writable at every
//! level, and map to itself (so the range is one physical run, which the
//! kernel then uses through its identity map). So what the kernel accepts
//! is what the MMU would let the process write: the check is the page
//! tables, not a second bookkeeping of bounds. A page of the space the walk
//! has accepted is remembered (one bit per page), like a TLB entry: nothing
//! ever unmaps or downgrades a user page while the process lives, so an
//! acceptance never goes stale and this "TLB" needs no shootdown. Each page
//! is walked until it is first accepted, not on every send: reading page
//! tables is slow under a shadow-paging hypervisor (some 80 µs a walk under
//! the project's KVM), and a send translates several times.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::{Mutex, Once, RwLock};
use x86_64::instructions::interrupts;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::MapToError;
use x86_64::structures::paging::{
    Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as F, PhysFrame, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

use crate::platform::memory::{self, GlobalFrames};
use crate::platform::user_region::{self, PAGE_SIZE};
use crate::platform::{boot, cpu, percpu};

/// The most pages one address space holds (32 MiB).
pub const MAX_PAGES: usize = 8192;
const WORDS: usize = MAX_PAGES / 64;
/// Bytes one page-directory entry maps.
const PD_SPAN: usize = 2 << 20;

/// The kernel's own tables (the boot tables every CPU starts on).
static KERNEL_PML4: Once<PhysFrame> = Once::new();

/// Records the kernel's page tables: call once, on the BSP, before the
/// first address space is made.
pub fn init() {
    KERNEL_PML4.call_once(|| PhysFrame::containing_address(PhysAddr::new(boot::boot_page_table())));
}

fn kernel_pml4() -> PhysFrame {
    *KERNEL_PML4.get().expect("address_space::init ran")
}

/// Loads the kernel's own page tables on this CPU (a pcore between vcores).
pub fn activate_kernel() {
    load(kernel_pml4());
}

/// The tables this CPU runs on, as [`load`] last loaded them (0: the
/// kernel's, which every CPU starts on). Kept per CPU because reading CR3
/// traps under a hypervisor that shadows page tables, and every send asks.
fn loaded() -> u64 {
    percpu::current().tables.load(Ordering::Relaxed)
}

fn load(pml4: PhysFrame) {
    let want = pml4.start_address().as_u64();
    let now = match loaded() {
        0 => kernel_pml4().start_address().as_u64(),
        t => t,
    };
    if now != want {
        // SAFETY: both the kernel's tables and every process's map the
        // kernel (text, data, stacks, frames) at the same addresses with the
        // same rights, so the code and data in use stay where they are.
        unsafe { Cr3::write(pml4, Cr3Flags::empty()) };
        percpu::current().tables.store(want, Ordering::Relaxed);
    }
}

/// Whether this CPU runs on the kernel's own tables.
pub fn kernel_active() -> bool {
    let t = loaded();
    t == 0 || t == kernel_pml4().start_address().as_u64()
}

/// Runs `f` on the kernel's own tables, then goes back to the ones this
/// CPU ran on.
pub fn with_kernel_tables<R>(f: impl FnOnce() -> R) -> R {
    interrupts::without_interrupts(|| {
        let before = match loaded() {
            0 => kernel_pml4(),
            t => PhysFrame::containing_address(PhysAddr::new(t)),
        };
        activate_kernel();
        let r = f();
        load(before);
        r
    })
}

/// A page table in a frame, through the identity map.
///
/// # Safety
/// `frame` holds a page table, and the caller is the only one using a
/// Rust reference to it for the lifetime chosen.
unsafe fn table<'a>(frame: PhysFrame) -> &'a mut PageTable {
    // SAFETY: frames below 4 GiB are identity-mapped (boot.rs); the caller
    // promised the rest.
    unsafe { &mut *(frame.start_address().as_u64() as *mut PageTable) }
}

/// One bit per page of the space.
#[derive(Debug)]
struct Bits([u64; WORDS]);

impl Bits {
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: usize, on: bool) {
        if on {
            self.0[i / 64] |= 1 << (i % 64);
        } else {
            self.0[i / 64] &= !(1 << (i % 64));
        }
    }
    fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
}

/// Which pages are handed out, and which of those the process may not give
/// back (procdata, stacks, its control blocks).
#[derive(Debug)]
struct Pages {
    used: Bits,
    pinned: Bits,
}

/// Why the process's `free_page` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    /// Not a page-aligned address of this space.
    NotMine,
    /// Not allocated now (a double free).
    NotAllocated,
    /// A page the kernel placed for the process (procdata, a stack...).
    Pinned,
}

/// A process's page tables and pages.
#[derive(Debug)]
pub struct AddressSpace {
    pml4: PhysFrame,
    base: usize,
    npages: usize,
    /// The pages just below and above the space (0 if none).
    guards: [usize; 2],
    /// Walks hold it shared; mapping a page holds it alone.
    tables: RwLock<()>,
    pages: Mutex<Pages>,
    /// Bit per page of the space: the walk accepted it (module docs).
    accepted: [AtomicU64; WORDS],
}

impl AddressSpace {
    /// Reserves `npages` contiguous pages of the user region and builds the
    /// tables. With `guards`, the page just below and the page just above
    /// are reserved too and belong to no process (their addresses:
    /// [`guard_pages`](Self::guard_pages)). `user_data`: map the image's
    /// `.user_data` user-writable (the cooperative processes).
    ///
    /// # Panics
    /// If `npages` exceeds [`MAX_PAGES`], or the user region or the frame
    /// allocator runs out: the demo sizes its processes to fit.
    pub fn new(npages: usize, guards: bool, user_data: bool) -> Self {
        assert!(
            npages <= MAX_PAGES,
            "an address space holds at most {MAX_PAGES} pages"
        );
        let extra = if guards { 2 } else { 0 };
        // Not zeroed here: `alloc` zeroes each page it hands out.
        let start = user_region::reserve_range(npages + extra)
            .unwrap_or_else(|| panic!("user region: no {npages} contiguous pages left"));
        let base = if guards { start + PAGE_SIZE } else { start };
        Self {
            pml4: build_tables(user_data),
            base,
            npages,
            guards: if guards {
                [start, base + npages * PAGE_SIZE]
            } else {
                [0, 0]
            },
            tables: RwLock::new(()),
            pages: Mutex::new(Pages {
                used: Bits([0; WORDS]),
                pinned: Bits([0; WORDS]),
            }),
            accepted: [const { AtomicU64::new(0) }; WORDS],
        }
    }

    /// Loads these tables on this CPU.
    pub fn activate(&self) {
        load(self.pml4);
    }

    /// Whether this CPU runs on these tables now.
    pub fn is_active(&self) -> bool {
        loaded() == self.pml4.start_address().as_u64()
    }

    /// The user addresses the space may map.
    pub fn range(&self) -> core::ops::Range<usize> {
        self.base..self.base + self.npages * PAGE_SIZE
    }

    /// The guard pages just below and above the space (0 if none).
    pub fn guard_pages(&self) -> [usize; 2] {
        self.guards
    }

    /// The kernel pointer to `[addr, addr + len)` if every page of it is
    /// mapped present, user-accessible and writable in this space's tables
    /// (at every level), each at its own address; `None` otherwise,
    /// including for ranges that wrap or are not canonical. (`len` 0: the
    /// page holding `addr`.)
    pub fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        let end = addr.checked_add(len)?;
        let first = addr & !(PAGE_SIZE - 1);
        let last = end.saturating_sub(1).max(addr) & !(PAGE_SIZE - 1);
        let ok = (first..=last)
            .step_by(PAGE_SIZE)
            .all(|page| self.accepted(page) || self.walk_and_remember(page));
        if ok {
            NonNull::new(addr as *mut u8)
        } else {
            None
        }
    }

    /// The bit of `page` in `accepted` (`None` outside the space).
    fn bit(&self, page: usize) -> Option<(&AtomicU64, u64)> {
        let i = page.checked_sub(self.base)? / PAGE_SIZE;
        (i < self.npages).then(|| (&self.accepted[i / 64], 1 << (i % 64)))
    }

    /// Whether the walk accepted `page` before.
    fn accepted(&self, page: usize) -> bool {
        self.bit(page)
            .is_some_and(|(w, b)| w.load(Ordering::Relaxed) & b != 0)
    }

    /// Walks the tables for `page`, and remembers an acceptance of a page of
    /// the space. (No interrupt handler touches an address space, so its
    /// locks are taken with interrupts on or off alike: `cli`/`sti` trap
    /// under a shadow-paging hypervisor.)
    fn walk_and_remember(&self, page: usize) -> bool {
        let ok = {
            let _walk = self.tables.read();
            self.walk(page) == Some(page as u64)
        };
        if ok {
            if let Some((w, b)) = self.bit(page) {
                w.fetch_or(b, Ordering::Relaxed);
            }
        }
        ok
    }

    /// What the MMU does for a ring-3 write to `page`: the physical address
    /// it reaches, or `None` if any level forbids it. Call with the tables
    /// held shared.
    fn walk(&self, page: usize) -> Option<u64> {
        const NEED: F = F::PRESENT.union(F::USER_ACCESSIBLE).union(F::WRITABLE);
        let va = VirtAddr::try_new(page as u64).ok()?;
        let index = [va.p4_index(), va.p3_index(), va.p2_index(), va.p1_index()];
        let mut table = self.pml4.start_address().as_u64();
        for (level, i) in index.into_iter().enumerate() {
            let entry = (table as *const u64).wrapping_add(usize::from(i));
            // SAFETY: `table` is a page-table frame of this space (or of the
            // boot tables it shares), identity-mapped; entries are read
            // volatile, as whole words, because the MMU writes their
            // accessed/dirty bits behind Rust's back, and changes to the
            // tables hold the lock the caller holds shared.
            let raw = unsafe { entry.read_volatile() };
            let flags = F::from_bits_truncate(raw);
            if !flags.contains(NEED) {
                return None;
            }
            let next = raw & 0x000f_ffff_ffff_f000;
            if level == 3 {
                return Some(next);
            }
            // User memory is 4 KiB pages; a huge page is the kernel's.
            if flags.contains(F::HUGE_PAGE) {
                return None;
            }
            table = next;
        }
        None
    }

    /// Maps page `addr` of the space user-writable at its own address.
    fn map(&self, addr: usize) {
        let flags = F::PRESENT | F::WRITABLE | F::USER_ACCESSIBLE | no_exec();
        let parents = F::PRESENT | F::WRITABLE | F::USER_ACCESSIBLE;
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(addr as u64));
        let frame = PhysFrame::containing_address(PhysAddr::new(addr as u64));
        let _change = self.tables.write();
        // SAFETY: `pml4` is this space's top-level table, and the write
        // lock makes this the only Rust access to its tables; offset 0 is
        // the identity map, which every page-table frame (below 4 GiB) has.
        let mut mapper = unsafe { OffsetPageTable::new(table(self.pml4), VirtAddr::zero()) };
        // SAFETY: the frame is a page of this space's run of the user
        // region: RAM reserved for this process that holds nothing of the
        // kernel's, so mapping it user-writable aliases no kernel object.
        match unsafe {
            mapper.map_to_with_table_flags(page, frame, flags, parents, &mut GlobalFrames)
        } {
            // A new mapping of a page that was not present: no CPU can hold
            // a stale translation of it, so nothing to flush. (Nothing here
            // ever unmaps or downgrades a user page: `accepted` and the
            // kernel pointers `translate` returned rely on it.)
            Ok(flush) => flush.ignore(),
            Err(MapToError::PageAlreadyMapped(_)) => {}
            Err(e) => panic!("mapping user page {addr:#x}: {e:?}"),
        }
    }

    /// Hands out `n` contiguous pages (plus `guard` unmapped pages below
    /// them, which are reserved too), maps and zeroes them; the address of
    /// the first mapped page.
    fn alloc(&self, n: usize, guard: usize, pinned: bool) -> Option<usize> {
        if n == 0 {
            return None;
        }
        let total = n + guard;
        let first = interrupts::without_interrupts(|| {
            let mut pages = self.pages.lock();
            let mut start = 0;
            while start + total <= self.npages {
                match (start..start + total).find(|&i| pages.used.get(i)) {
                    Some(taken) => start = taken + 1,
                    None => {
                        for i in start..start + total {
                            pages.used.set(i, true);
                            pages.pinned.set(i, pinned || i < start + guard);
                        }
                        return Some(start + guard);
                    }
                }
            }
            None
        })?;
        let addr = self.base + first * PAGE_SIZE;
        interrupts::without_interrupts(|| {
            for i in 0..n {
                self.map(addr + i * PAGE_SIZE);
            }
        });
        // SAFETY: the pages are this space's (reserved RAM, identity-mapped
        // in the kernel's tables and now mapped in this space's, which are
        // the only tables a CPU allocating for this process runs on), and
        // were free: the process has no use for them yet.
        unsafe { core::ptr::write_bytes(addr as *mut u8, 0, n * PAGE_SIZE) };
        Some(addr)
    }

    /// Allocates `n` contiguous zeroed pages the process may give back;
    /// the address of the first.
    pub fn alloc_pages(&self, n: usize) -> Option<usize> {
        self.alloc(n, 0, false)
    }

    /// Allocates one zeroed page the process may give back.
    pub fn alloc_page(&self) -> Option<usize> {
        self.alloc_pages(1)
    }

    /// Allocates `n` contiguous zeroed pages the process may not give back
    /// (procdata, its control blocks).
    pub fn alloc_pinned(&self, n: usize) -> Option<usize> {
        self.alloc(n, 0, true)
    }

    /// A stack of `n` pages with an unmapped guard page below it (an
    /// overflow faults); its top.
    pub fn alloc_stack(&self, n: usize) -> Option<usize> {
        Some(self.alloc(n, 1, true)? + n * PAGE_SIZE)
    }

    /// The process gives page `addr` back: it returns to the space's pool
    /// (and stays mapped; see the module docs).
    pub fn free_page(&self, addr: usize) -> Result<(), FreeError> {
        let r = self.range();
        if !r.contains(&addr) || addr % PAGE_SIZE != 0 {
            return Err(FreeError::NotMine);
        }
        let i = (addr - self.base) / PAGE_SIZE;
        interrupts::without_interrupts(|| {
            let mut pages = self.pages.lock();
            if !pages.used.get(i) {
                Err(FreeError::NotAllocated)
            } else if pages.pinned.get(i) {
                Err(FreeError::Pinned)
            } else {
                pages.used.set(i, false);
                Ok(())
            }
        })
    }

    /// Pages handed out now (stack guards included).
    pub fn used_pages(&self) -> usize {
        interrupts::without_interrupts(|| self.pages.lock().used.count())
    }
}

/// The no-execute bit, if the CPUs honour it.
fn no_exec() -> F {
    if cpu::nx() { F::NO_EXECUTE } else { F::empty() }
}

/// Builds a process's tables (see the module docs); its top-level table.
fn build_tables(user_data: bool) -> PhysFrame {
    let frame = || memory::alloc_frame().expect("out of frames for page tables");
    let (pml4_f, pdpt_f, pd_f) = (frame(), frame(), frame());
    let image = boot::image_layout();
    let image_end = boot::kernel_image().end;
    let user = user_region::range();
    assert!(
        image_end as u64 <= user.start,
        "the kernel image reaches into the user region"
    );
    let image_pds = image_end.div_ceil(PD_SPAN);
    let nx = no_exec();
    let up = F::PRESENT | F::WRITABLE | F::USER_ACCESSIBLE;
    // SAFETY: (and for every `table` call below) the frames are fresh from the
    // allocator (zeroed), which nothing else references yet, or the
    // kernel's own tables, which this function only reads.
    let kpml4 = unsafe { table(kernel_pml4()) };
    // SAFETY: see above.
    let kpdpt = unsafe { table(kpml4[0].frame().expect("the boot PML4 maps 0..512 GiB")) };
    // SAFETY: see above.
    let kpd0 = unsafe { table(kpdpt[0].frame().expect("the boot PDPT maps 0..1 GiB")) };
    // SAFETY: see above.
    let (pml4, pdpt, pd) = unsafe { (table(pml4_f), table(pdpt_f), table(pd_f)) };
    pml4[0].set_frame(pdpt_f, up);
    pdpt[0].set_frame(pd_f, up);
    for i in 1..4 {
        pdpt[i] = kpdpt[i].clone();
    }
    for i in 0..512 {
        let region = (i * PD_SPAN) as u64;
        if user.contains(&region) {
            continue; // the process's pages, mapped as allocated
        }
        if i >= image_pds {
            pd[i] = kpd0[i].clone(); // a 2 MiB page of the kernel's
            continue;
        }
        let pt_f = frame();
        pd[i].set_frame(pt_f, up);
        // SAFETY: see above.
        let pt = unsafe { table(pt_f) };
        for (j, entry) in pt.iter_mut().enumerate() {
            let a = i * PD_SPAN + j * PAGE_SIZE;
            let flags = if a == 0 {
                continue; // null stays unmapped
            } else if image.text.contains(&a) {
                F::PRESENT | F::USER_ACCESSIBLE
            } else if image.rodata.contains(&a) {
                F::PRESENT | F::USER_ACCESSIBLE | nx
            } else if user_data && image.user_data.contains(&a) {
                F::PRESENT | F::WRITABLE | F::USER_ACCESSIBLE | nx
            } else {
                F::PRESENT | F::WRITABLE | nx
            };
            entry.set_addr(PhysAddr::new(a as u64), flags);
        }
    }
    pml4_f
}
