//! The platform: what any x86_64 kernel needs before it can host processes.
//! One concept per module.
//!
//! | module | what |
//! |---|---|
//! | [`boot`] (+ `asm/boot.S`) | Multiboot header, 32-bit entry, page tables, long mode |
//! | [`multiboot`] | the loader's memory map and command line |
//! | [`console`] | `print!`/`println!` to every output device there is |
//! | [`serial`], [`vga`] | the devices: COM1 (`uart_16550`), the VGA text screen |
//! | [`klog`] | the `log` backend |
//! | [`qemu`] | leaving QEMU with a status (`isa-debug-exit`) |
//! | [`percpu`] | per-CPU data found through GS, stacks |
//! | [`gdt`] | per-CPU GDT and TSS (IST stacks, the ring-3 trap stack) |
//! | [`cpu`] | control registers for ring 3: NX on; SMEP, SMAP off (and why) |
//! | [`ring3`] | entering ring 3 from a kernel loop, and coming back |
//! | [`idt`] (+ `asm/isr.S`), [`exceptions`] | entry stubs, dispatch, handler registration, fatal reports |
//! | [`memory`] | the 4 KiB frame allocator |
//! | [`user_region`] | the RAM set aside for processes, and its page allocator |
//! | [`madt`] | the CPUs and their APIC ids, from the ACPI MADT (`acpi`) |
//! | [`fwcfg`] | QEMU's CPU count, a cross-check of the MADT |
//! | [`lapic`] | the x2APIC (through the `apic` crate): IPIs, EOI, timer |
//! | [`time`] | TSC calibration, delays, the periodic tick |
//! | [`smp`] (+ `asm/trampoline.S`) | INIT-SIPI-SIPI and the AP entry |
//! | [`jobs`] | running a function on another CPU |
//! | [`checks`] | the platform self-checks |

#[macro_use]
pub mod console;
pub mod boot;
pub mod checks;
pub mod cpu;
pub mod exceptions;
pub mod fwcfg;
pub mod gdt;
pub mod idt;
pub mod jobs;
pub mod klog;
pub mod lapic;
pub mod madt;
pub mod memory;
pub mod multiboot;
pub mod percpu;
pub mod qemu;
pub mod ring3;
pub mod serial;
pub mod smp;
pub mod time;
pub mod user_region;
pub mod vga;
