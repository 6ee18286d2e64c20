//! The user region: the memory of the (single, simulated) process.
//!
//! A fixed, page-aligned range of physical RAM, `[USER_BASE, USER_END)` =
//! 16 MiB .. 64 MiB, set aside at boot. The demo's process lives there: its
//! UCQ pages, event queues, VCPDs and procdata. Like all memory it is reached
//! through the identity mapping, so a user address equals the kernel pointer
//! to the byte; what makes it "user" memory is the rule that the kernel
//! checks every address the process hands it against these bounds
//! ([`contains`], [`translate`]) and treats the bytes as racy (the process
//! may write them at any time), never as kernel data.
//!
//! Pages are handed out by a bitmap allocator of their own, zeroed on
//! allocation, so kernel frames ([`crate::platform::memory`]) and user pages never mix.

use core::ptr::NonNull;

use spin::Mutex;
use x86_64::instructions::interrupts;

use crate::platform::multiboot::BootInfo;

/// Size of a user page.
pub const PAGE_SIZE: usize = 4096;
/// First byte of the user region.
pub const USER_BASE: usize = 16 << 20;
/// One past the last byte of the user region.
pub const USER_END: usize = 64 << 20;

const NPAGES: usize = (USER_END - USER_BASE) / PAGE_SIZE;
const NWORDS: usize = NPAGES / 64;

/// Bit `i % 64` of word `i / 64` is set while page `i` is allocated.
static USED: Mutex<[u64; NWORDS]> = Mutex::new([0; NWORDS]);

/// Checks that the firmware's memory map has RAM for the whole region.
///
/// # Panics
/// If it does not (QEMU needs at least `-m 80M` or so).
pub fn init(info: &BootInfo) {
    assert!(
        info.is_available(USER_BASE as u64, USER_END as u64),
        "user region {USER_BASE:#x}..{USER_END:#x} is not all RAM: give QEMU more memory (-m 256M)"
    );
}

/// The bounds of the user region, for the frame allocator to skip.
pub fn range() -> core::ops::Range<u64> {
    USER_BASE as u64..USER_END as u64
}

/// Whether `[addr, addr + len)` lies entirely inside the user region. An
/// empty range counts if `addr` is inside; a range that wraps never does.
pub fn contains(addr: usize, len: usize) -> bool {
    match addr.checked_add(len) {
        Some(end) => (USER_BASE..USER_END).contains(&addr) && end <= USER_END,
        None => false,
    }
}

/// The kernel pointer for the user range `[addr, addr + len)`, or `None` if
/// it is not entirely inside the region. This is the check the kernel's
/// `vcpd_abi::UserMemory` implementation forwards to: the region is always
/// mapped RAM that holds nothing the kernel relies on, and the pointer keeps
/// the address's alignment (it is the same number).
pub fn translate(addr: usize, len: usize) -> Option<NonNull<u8>> {
    if contains(addr, len) {
        NonNull::new(addr as *mut u8)
    } else {
        None
    }
}

/// Allocates one zeroed, page-aligned user page and returns its user
/// address, or `None` when the region is full.
pub fn alloc_page() -> Option<usize> {
    let index = interrupts::without_interrupts(|| {
        let mut used = USED.lock();
        let w = used.iter().position(|&word| word != u64::MAX)?;
        let bit = used[w].trailing_ones() as usize;
        used[w] |= 1 << bit;
        Some(w * 64 + bit)
    })?;
    let addr = USER_BASE + index * PAGE_SIZE;
    // SAFETY: the page is inside the user region, which is identity-mapped
    // RAM reserved for it (`init`), and was free, so no one else uses it.
    // The process cannot race with us on a page it has not been given yet.
    unsafe { core::ptr::write_bytes(addr as *mut u8, 0, PAGE_SIZE) };
    Some(addr)
}

/// Allocates `npages` contiguous, zeroed user pages (first fit) and returns
/// the user address of the first, or `None` if no such run is free.
pub fn alloc_range(npages: usize) -> Option<usize> {
    let addr = reserve_range(npages)?;
    // SAFETY: as in `alloc_page`: inside the region, reserved RAM, and the
    // run was free, so nobody else uses these pages.
    unsafe { core::ptr::write_bytes(addr as *mut u8, 0, npages * PAGE_SIZE) };
    Some(addr)
}

/// Reserves `npages` contiguous user pages (first fit) *without* zeroing
/// them, and returns the user address of the first: for a caller that
/// zeroes each page before it hands it out (a process's address space
/// gets its run this way; under a shadow-paging hypervisor, touching pages
/// it never uses costs a fault each).
pub fn reserve_range(npages: usize) -> Option<usize> {
    if npages == 0 || npages > NPAGES {
        return None;
    }
    let first = interrupts::without_interrupts(|| {
        let mut used = USED.lock();
        let is_used = |used: &[u64; NWORDS], i: usize| used[i / 64] & (1 << (i % 64)) != 0;
        let mut start = 0;
        while start + npages <= NPAGES {
            match (start..start + npages).find(|&i| is_used(&used, i)) {
                // Restart the search after the page in the way.
                Some(taken) => start = taken + 1,
                None => {
                    for i in start..start + npages {
                        used[i / 64] |= 1 << (i % 64);
                    }
                    return Some(start);
                }
            }
        }
        None
    })?;
    Some(USER_BASE + first * PAGE_SIZE)
}

/// Returns the user page at `addr` to the region. The kernel never holds
/// references into user memory, so a page the process still uses merely
/// stops being its own (a bug in the demo, not a memory-safety hole).
///
/// # Panics
/// If `addr` is not a page of the region or the page is not allocated.
pub fn free_page(addr: usize) {
    assert!(
        contains(addr, PAGE_SIZE) && addr % PAGE_SIZE == 0,
        "free_page: {addr:#x} is not a user page"
    );
    let index = (addr - USER_BASE) / PAGE_SIZE;
    interrupts::without_interrupts(|| {
        let mut used = USED.lock();
        let bit = 1u64 << (index % 64);
        assert!(
            used[index / 64] & bit != 0,
            "free_page: user page {addr:#x} freed twice"
        );
        used[index / 64] &= !bit;
    });
}

/// Number of user pages currently allocated.
pub fn used_pages() -> usize {
    interrupts::without_interrupts(|| USED.lock().iter().map(|w| w.count_ones() as usize).sum())
}
