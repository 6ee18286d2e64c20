//! Physical memory: a bitmap allocator of 4 KiB frames.
//!
//! The allocator manages the RAM the Multiboot memory map calls available
//! between the end of the kernel image and 4 GiB, minus the user region
//! ([`crate::platform::user_region`]), which has its own allocator. Memory below the
//! kernel (firmware data, the AP trampoline, the Multiboot information) is
//! never handed out.
//!
//! One bit per frame below 4 GiB (128 KiB of .bss), set = free. Allocation
//! is next-fit from a hint, so it runs in constant time while memory is
//! plentiful; a frame is zeroed before it is returned, and freeing checks
//! for double frees. One [`spin::Mutex`] guards the bitmap.
//!
//! Frames are used through the identity mapping (see [`crate::platform::boot`]): a
//! frame's physical address is also its kernel virtual address.

use spin::Mutex;
use x86_64::PhysAddr;
use x86_64::instructions::interrupts;
use x86_64::structures::paging::{FrameAllocator, FrameDeallocator, PhysFrame, Size4KiB};

use crate::platform::multiboot::{BootInfo, RegionKind};

/// Bytes per frame.
pub const FRAME_SIZE: usize = 4096;

/// Physical memory the identity map covers, and so the most we manage.
const MANAGED_LIMIT: u64 = 4 << 30;
const NFRAMES: usize = (MANAGED_LIMIT / FRAME_SIZE as u64) as usize;
const NWORDS: usize = NFRAMES / 64;

struct Bitmap {
    /// Bit `i % 64` of word `i / 64` is set when frame `i` is free.
    words: [u64; NWORDS],
    /// Where the next search starts (a word index).
    hint: usize,
    free: usize,
    total: usize,
}

static FRAMES: Mutex<Bitmap> = Mutex::new(Bitmap {
    words: [0; NWORDS],
    hint: 0,
    free: 0,
    total: 0,
});

/// Hands the available RAM from `info` to the allocator, except the kernel
/// image and `[exclude.start, exclude.end)` (the user region).
pub fn init(info: &BootInfo, exclude: core::ops::Range<u64>) {
    let kernel_end = crate::platform::boot::kernel_image().end as u64;
    interrupts::without_interrupts(|| {
        let mut map = FRAMES.lock();
        for region in info
            .regions
            .iter()
            .filter(|r| r.kind == RegionKind::Available)
        {
            // Whole frames only, inside [kernel_end, 4 GiB).
            let start = region
                .start
                .max(kernel_end)
                .next_multiple_of(FRAME_SIZE as u64);
            let end = region.end.min(MANAGED_LIMIT) & !(FRAME_SIZE as u64 - 1);
            let mut addr = start;
            while addr < end {
                if !exclude.contains(&addr) {
                    map.set_free((addr / FRAME_SIZE as u64) as usize);
                }
                addr += FRAME_SIZE as u64;
            }
        }
        map.total = map.free;
    });
}

impl Bitmap {
    fn set_free(&mut self, frame: usize) {
        let bit = 1u64 << (frame % 64);
        assert!(
            self.words[frame / 64] & bit == 0,
            "frame {frame:#x} freed twice"
        );
        self.words[frame / 64] |= bit;
        self.free += 1;
    }

    fn take(&mut self) -> Option<usize> {
        for i in 0..NWORDS {
            let w = (self.hint + i) % NWORDS;
            let word = self.words[w];
            if word != 0 {
                let bit = word.trailing_zeros() as usize;
                self.words[w] &= !(1 << bit);
                self.hint = w;
                self.free -= 1;
                return Some(w * 64 + bit);
            }
        }
        None
    }
}

/// Allocates one zeroed 4 KiB frame, or `None` when memory is exhausted.
pub fn alloc_frame() -> Option<PhysFrame> {
    let index = interrupts::without_interrupts(|| FRAMES.lock().take())?;
    let addr = (index * FRAME_SIZE) as u64;
    // SAFETY: the frame was free, so nothing references it, and it is RAM
    // below 4 GiB, identity-mapped and writable (boot.rs).
    unsafe { core::ptr::write_bytes(addr as *mut u8, 0, FRAME_SIZE) };
    Some(PhysFrame::containing_address(PhysAddr::new(addr)))
}

/// Returns a frame from [`alloc_frame`] to the allocator.
///
/// # Safety
/// `frame` must come from [`alloc_frame`], and nothing may use it any more:
/// the next allocation hands it out again (and zeroes it).
///
/// # Panics
/// If the frame is already free or was never managed by the allocator.
pub unsafe fn free_frame(frame: PhysFrame) {
    let addr = frame.start_address().as_u64();
    assert!(
        addr < MANAGED_LIMIT,
        "free_frame: {addr:#x} is not a managed frame"
    );
    interrupts::without_interrupts(|| FRAMES.lock().set_free((addr / FRAME_SIZE as u64) as usize));
}

/// The kernel pointer to a frame's bytes (the identity mapping).
pub fn frame_ptr(frame: PhysFrame) -> *mut u8 {
    frame.start_address().as_u64() as *mut u8
}

/// `(free, total)` frame counts.
pub fn stats() -> (usize, usize) {
    interrupts::without_interrupts(|| {
        let map = FRAMES.lock();
        (map.free, map.total)
    })
}

/// The allocator as an `x86_64` [`FrameAllocator`], for its page-table
/// mappers (e.g. to build more page tables later).
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalFrames;

// SAFETY: `alloc_frame` hands out each free frame once until it is freed.
unsafe impl FrameAllocator<Size4KiB> for GlobalFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        alloc_frame()
    }
}

impl FrameDeallocator<Size4KiB> for GlobalFrames {
    unsafe fn deallocate_frame(&mut self, frame: PhysFrame<Size4KiB>) {
        // SAFETY: the trait's contract is `free_frame`'s.
        unsafe { free_frame(frame) }
    }
}
