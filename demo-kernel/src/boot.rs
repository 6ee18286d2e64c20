//! From the Multiboot loader to Rust: the image header, long mode, `kmain`.
//!
//! `asm/boot.S` holds the Multiboot v1 header and the 32-bit entry. The
//! header sets the a.out-kludge flag and spells out the load addresses,
//! which is what makes QEMU's `-kernel` accept an ELF64 file (it refuses
//! 64-bit ELF otherwise). The entry code zeroes .bss, builds the boot page
//! tables, enables PAE + EFER.LME + paging, loads a 64-bit GDT and
//! far-jumps to 64-bit code, which calls [`rust_entry`] on the boot stack.
//!
//! # Memory model
//! The boot page tables identity-map physical `[0, 4 GiB)` with 2 MiB
//! pages, readable, writable and executable at CPL 0, and every CPU uses
//! them for its whole life. So a physical address below 4 GiB *is* the
//! kernel virtual address of that byte, and the whole kernel (frame
//! allocator, user region, trampoline) relies on it. Nothing is mapped
//! above 4 GiB: touching it is a page fault with a readable report.

use core::arch::global_asm;

global_asm!(
    include_str!("asm/boot.S"),
    rust_entry = sym rust_entry,
    options(att_syntax)
);

/// The value a Multiboot v1 loader leaves in EAX.
const MULTIBOOT_LOADER_MAGIC: u32 = 0x2bad_b002;

/// The Rust entry of the bootstrap processor, called by `asm/boot.S` in long
/// mode with interrupts off, on the 64 KiB boot stack.
extern "C" fn rust_entry(magic: u32, info_addr: u32) -> ! {
    // GS first: the console, the logger and panics ask which CPU they run on.
    crate::percpu::install(0);
    crate::console::init();
    if magic != MULTIBOOT_LOADER_MAGIC {
        panic!(
            "not started by a Multiboot loader (EAX = {magic:#x}); boot with QEMU -kernel or GRUB"
        );
    }
    crate::kmain(info_addr as usize)
}

/// Physical address of the boot PML4, which every CPU loads into CR3.
pub fn boot_page_table() -> u64 {
    let (frame, _) = x86_64::registers::control::Cr3::read();
    frame.start_address().as_u64()
}

/// Bounds of the kernel image in memory (from the linker script).
pub fn kernel_image() -> core::ops::Range<usize> {
    unsafe extern "C" {
        static __kernel_start: u8;
        static __kernel_end: u8;
    }
    // Only the addresses of the linker symbols are taken, never their
    // contents.
    (&raw const __kernel_start) as usize..(&raw const __kernel_end) as usize
}
