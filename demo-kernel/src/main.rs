//! demo-kernel: a small x86_64 kernel that shows how to adopt the
//! vcpd-events crates, and proves event delivery end to end in QEMU.
//!
//! It boots from a Multiboot v1 loader (QEMU's `-kernel`, or GRUB from the
//! ISO `scripts/demo.sh --iso` builds), starts every CPU the ACPI MADT
//! lists, checks the platform, runs the event scenarios and leaves QEMU
//! with a pass/fail status (on a real machine it halts after the verdict).
//! The source, by what a kernel author looks for:
//!
//! | directory | what |
//! |---|---|
//! | [`platform`] | boot, CPU set-up, interrupts and the ring-3 entry/exit, memory, console, ACPI, SMP: what any kernel needs |
//! | [`process`] | the process model that adopts the crates: [`process::proc_ops`] (the host traits), [`process::address_space`] (page tables, the user-memory check), the process and its vcores, the pcores and scheduler, ring-3 traps, system calls, faults |
//! | [`user`] | the process's side, in ring 3: the vcore entry (the upcall), the uthread, the receive loop, the runtime, system-call stubs |
//! | [`scenarios`] | the nine event-delivery scenarios |
//!
//! Memory model: physical memory below 4 GiB is identity-mapped in the
//! kernel's tables (see [`platform::boot`]), so physical addresses are
//! kernel pointers; each process has its own tables, in which its pages are
//! mapped user-accessible at the same addresses and the kernel
//! supervisor-only ([`process::address_space`]).

#![no_std]
#![no_main]

#[macro_use]
pub mod platform;
pub mod process;
pub mod scenarios;
pub mod user;

use core::fmt::Write;
use core::panic::PanicInfo;

use platform::multiboot::BootInfo;
use platform::qemu::{QemuExit, exit_qemu};
use platform::{checks, console, gdt, idt, klog, lapic, memory, percpu, smp, time, user_region};

/// The BSP's path from boot to the verdict. `info_addr` is the Multiboot
/// information (boot.rs has set up the console and this CPU's GS already).
fn kmain(info_addr: usize) -> ! {
    // SAFETY: `info_addr` is what the Multiboot loader passed (boot.rs
    // checked the magic), and nothing has written to memory since, except
    // .bss, which the loader does not place the information in.
    let info = unsafe { BootInfo::parse(info_addr) };
    klog::init(&info.cmdline);
    println!(
        "demo-kernel: booting (command line: {:?})",
        info.cmdline.as_str()
    );
    let (serial, vga) = console::devices();
    println!(
        "console: serial COM1 {}, VGA text screen {}",
        if serial { "yes" } else { "no" },
        if vga { "yes" } else { "no" }
    );

    // This CPU's tables first: from here on a fault is reported, not a
    // triple fault.
    gdt::init(percpu::current());
    platform::cpu::init();
    idt::load();

    user_region::init(&info);
    memory::init(&info, user_region::range());
    let tsc_hz = time::calibrate_tsc();
    log::info!("TSC: {} MHz", tsc_hz / 1_000_000);

    if let Err(e) = lapic::init_bsp() {
        fatal(format_args!("{e}"));
    }
    percpu::current().set_online();
    // From here the BSP takes interrupts too: completion IPIs of jobs, and
    // whatever the scenarios send it.
    x86_64::instructions::interrupts::enable();

    checks::memory_summary(&info);
    checks::allocators();

    let cpus = smp::start_aps(&info);
    checks::cpus_online(cpus);
    checks::ipis();
    checks::timer();

    inject_fault(&info);
    process::init();

    let mode = if info.has_option("mode=short") {
        scenarios::Mode::Short
    } else {
        scenarios::Mode::Full
    };
    let failed = scenarios::run_all(mode);
    if failed > 0 {
        println!("demo-kernel: FAILED ({failed} scenarios failed)");
        exit_qemu(QemuExit::Failure);
    }
    println!("demo-kernel: all checks passed");
    exit_qemu(QemuExit::Success)
}

/// `fault=pagefault` on the command line makes the kernel touch unmapped
/// memory after the checks: a test that exceptions are reported readably.
fn inject_fault(info: &BootInfo) {
    if info.has_option("fault=pagefault") {
        println!("injecting a page fault (fault=pagefault)");
        // Nothing is mapped above 4 GiB (boot.rs).
        let unmapped = 0x40_0000_0000 as *const u64;
        // SAFETY: not sound to read, on purpose: the access faults before
        // any value is produced, and the page-fault handler ends the run.
        let _ = unsafe { unmapped.read_volatile() };
        unreachable!("the read of unmapped memory did not fault");
    }
}

/// Ends the run with a one-line reason; for failures that are the
/// environment's, not a bug (e.g. a CPU model without x2APIC).
pub fn fatal(reason: core::fmt::Arguments<'_>) -> ! {
    let mut w = console::panic_writer();
    let _ = writeln!(w, "demo-kernel: FATAL: {reason}");
    let _ = writeln!(w, "demo-kernel: FAILED");
    exit_qemu(QemuExit::Failure)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let cpu = percpu::try_current().map_or(0, |cpu| cpu.index());
    let mut w = console::panic_writer();
    match info.location() {
        Some(at) => {
            let _ = write!(w, "\nPANIC on cpu {cpu} at {}:{}: ", at.file(), at.line());
        }
        None => {
            let _ = write!(w, "\nPANIC on cpu {cpu}: ");
        }
    }
    let _ = writeln!(w, "{}", info.message());
    let _ = writeln!(w, "demo-kernel: FAILED");
    exit_qemu(QemuExit::Failure)
}
