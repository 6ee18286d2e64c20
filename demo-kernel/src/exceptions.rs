//! Readable reports of CPU exceptions and unexpected interrupts.
//!
//! The kernel has no way to recover from an exception, so every one ends
//! the run: a report on the console (what, where, the registers),
//! then QEMU exits with the failure status. The report goes through the
//! panic writer, because the exception may have struck while this CPU held
//! the console lock.

use core::fmt::Write;

use x86_64::registers::control::Cr2;

use crate::idt::InterruptFrame;
use crate::qemu::{QemuExit, exit_qemu};

/// Name and mnemonic of exception `vector`.
fn describe(vector: u8) -> (&'static str, &'static str) {
    match vector {
        0 => ("Divide error", "#DE"),
        1 => ("Debug", "#DB"),
        2 => ("Non-maskable interrupt", "NMI"),
        3 => ("Breakpoint", "#BP"),
        4 => ("Overflow", "#OF"),
        5 => ("BOUND range exceeded", "#BR"),
        6 => ("Invalid opcode", "#UD"),
        7 => ("Device not available", "#NM"),
        8 => ("Double fault", "#DF"),
        10 => ("Invalid TSS", "#TS"),
        11 => ("Segment not present", "#NP"),
        12 => ("Stack-segment fault", "#SS"),
        13 => ("General protection fault", "#GP"),
        14 => ("Page fault", "#PF"),
        16 => ("x87 floating-point error", "#MF"),
        17 => ("Alignment check", "#AC"),
        18 => ("Machine check", "#MC"),
        19 => ("SIMD floating-point exception", "#XM"),
        20 => ("Virtualization exception", "#VE"),
        21 => ("Control protection exception", "#CP"),
        28 => ("Hypervisor injection exception", "#HV"),
        29 => ("VMM communication exception", "#VC"),
        30 => ("Security exception", "#SX"),
        _ => ("Reserved exception", "#??"),
    }
}

fn cpu_label() -> usize {
    crate::percpu::try_current().map_or(usize::MAX, |cpu| cpu.index())
}

/// Reports exception `frame.vector` and ends the run.
pub fn fatal(frame: &InterruptFrame) -> ! {
    let vector = frame.vector as u8;
    let (name, mnemonic) = describe(vector);
    let mut w = crate::console::panic_writer();
    let _ = writeln!(
        w,
        "\nEXCEPTION: {name} ({mnemonic}, vector {vector}) on cpu {}, error code {:#x}",
        cpu_label(),
        frame.error_code
    );
    if vector == 14 {
        let e = frame.error_code;
        let _ = writeln!(
            w,
            "  page fault at address CR2 = {:#x}: {} {} in {} mode{}",
            Cr2::read_raw(),
            if e & 1 != 0 {
                "protection violation on"
            } else {
                "non-present page on"
            },
            if e & 0x10 != 0 {
                "instruction fetch"
            } else if e & 2 != 0 {
                "write"
            } else {
                "read"
            },
            if e & 4 != 0 { "user" } else { "kernel" },
            if e & 8 != 0 {
                " (reserved bit set in a page table)"
            } else {
                ""
            },
        );
    }
    write_frame(&mut w, frame);
    exit_qemu(QemuExit::Failure)
}

/// Reports an interrupt on a vector nobody registered and ends the run.
pub fn unexpected_interrupt(frame: &InterruptFrame) -> ! {
    let mut w = crate::console::panic_writer();
    let _ = writeln!(
        w,
        "\nUNEXPECTED INTERRUPT: vector {:#x} on cpu {} has no handler (idt::register)",
        frame.vector,
        cpu_label()
    );
    write_frame(&mut w, frame);
    exit_qemu(QemuExit::Failure)
}

fn write_frame(w: &mut impl Write, f: &InterruptFrame) {
    let _ = writeln!(
        w,
        "  RIP {:#018x}  CS {:#x}  RFLAGS {:#x}  RSP {:#018x}  SS {:#x}",
        f.rip, f.cs, f.rflags, f.rsp, f.ss
    );
    let _ = writeln!(
        w,
        "  RAX {:#x}  RBX {:#x}  RCX {:#x}  RDX {:#x}  RSI {:#x}  RDI {:#x}  RBP {:#x}",
        f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp
    );
    let _ = writeln!(
        w,
        "  R8 {:#x}  R9 {:#x}  R10 {:#x}  R11 {:#x}  R12 {:#x}  R13 {:#x}  R14 {:#x}  R15 {:#x}",
        f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15
    );
    let _ = writeln!(w, "demo-kernel: FAILED (exception)");
}
