//! A CPU exception in ring 3 kills the process, not the kernel.
//!
//! A page fault on a kernel or foreign address, a general-protection fault
//! from a privileged instruction, an I/O port or a gate ring 3 may not
//! raise, an invalid opcode...: the process that caused it becomes DYING
//! (event-core's `VcoreSet::destroy`: every later send to it is dropped as
//! `Dying`), its other vcores' cores are interrupted and freed, and the
//! kernel prints one line saying what happened. The other processes run on.

use core::fmt::Write;

use x86_64::registers::control::Cr2;

use crate::platform::idt::InterruptFrame;
use crate::platform::{boot, percpu, user_region};
use crate::process::trap::{self, Stop};
use crate::process::{Death, Process};

/// Kills `p` for the exception in `frame` (on its vcore `v`) and ends the
/// ring-3 run on this core.
pub fn kill(p: &Process, v: u32, frame: &InterruptFrame) -> ! {
    let vector = frame.vector as u8;
    let death = Death::Fault {
        vector,
        error: frame.error_code,
        addr: if vector == 14 { Cr2::read_raw() } else { 0 },
        rip: frame.rip,
        vcore: v,
    };
    let mut line = heapless::String::<256>::new();
    let _ = describe(&mut line, p, &death);
    let first = p.set_death(death);
    println!(
        "process {}: {} on vcore {v} (cpu {}): {line}; {}",
        p.name(),
        if first {
            "killed by a fault"
        } else {
            "a fault"
        },
        percpu::current_index(),
        if first {
            "it is dying"
        } else {
            "it was dying already"
        }
    );
    p.counters
        .faults
        .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    p.destroy(death);
    trap::leave(Stop::Dead)
}

/// Kills `p` for something the kernel cannot do for it (a context it may
/// not resume); the stop to end the run with.
pub fn kill_for(p: &Process, v: u32, why: &str) -> Stop {
    println!(
        "process {}: killed on vcore {v} (cpu {}): {why}; it is dying",
        p.name(),
        percpu::current_index()
    );
    p.destroy(Death::Destroyed);
    Stop::Dead
}

/// A fault's name, mnemonic and what it hit, in one line.
pub fn describe(w: &mut impl Write, p: &Process, death: &Death) -> core::fmt::Result {
    let Death::Fault {
        vector,
        error,
        addr,
        rip,
        ..
    } = *death
    else {
        return write!(w, "{death:?}");
    };
    match vector {
        14 => write!(
            w,
            "#PF, user {} {addr:#x} ({}; {}) at rip {rip:#x}",
            if error & 0x10 != 0 {
                "instruction fetch at"
            } else if error & 2 != 0 {
                "write to"
            } else {
                "read of"
            },
            what_is(p, addr),
            if error & 1 != 0 {
                "protection violation"
            } else {
                "not mapped"
            }
        ),
        13 => {
            write!(w, "#GP at rip {rip:#x}")?;
            if error == 0 {
                write!(w, " (a privileged instruction or I/O port in ring 3)")
            } else if error & 2 != 0 {
                write!(w, " (int {:#x}: a gate ring 3 may not raise)", error >> 3)
            } else {
                write!(w, " (selector {:#x})", error & !7)
            }
        }
        6 => write!(w, "#UD (invalid opcode) at rip {rip:#x}"),
        v => write!(w, "exception {v} (error {error:#x}) at rip {rip:#x}"),
    }
}

/// What the address `a` is, from `p`'s point of view.
fn what_is(p: &Process, a: u64) -> &'static str {
    let a = a as usize;
    let image = boot::image_layout();
    if image.text.contains(&a) {
        "kernel text, read-only to ring 3"
    } else if image.rodata.contains(&a) {
        "kernel read-only data"
    } else if image.user_data.contains(&a) {
        "the cooperative processes' data"
    } else if boot::kernel_image().contains(&a) {
        "kernel data"
    } else if p.guard_pages().contains(&(a & !0xfff)) && a >= 0x1000 {
        "its guard page"
    } else if p.space().range().contains(&a) {
        "its own memory"
    } else if user_region::contains(a, 1) {
        "another process's memory"
    } else if a < 4 << 30 {
        "kernel memory"
    } else {
        "nothing there"
    }
}
