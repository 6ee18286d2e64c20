//! The vcore entry and the uthread: the two contexts a vcore runs in.
//!
//! **Vcore context** ([`vcore_entry`]): where the kernel starts a vcore,
//! and where it sends it on a notification when notifications are enabled
//! (the *upcall*, Akaros's way): it saves the interrupted ring-3 context in
//! the VCPD's `uthread_ctx`, sets `notif_disabled` and enters here, on the
//! vcore's own stack (the VCPD's `vcore_stack`). The entry runs the
//! receive half (`vcore_online` after a start or restart, else
//! `handle_events`, then the recovery of preempted peers' public
//! mailboxes), and then asks the kernel to pop the uthread context
//! (`POP_UTHREAD`: notifications on again, the saved context resumed, or
//! a fresh uthread if there is none). Its first instruction reads the TSC
//! (scenario 8's latency) and it records the CS it runs with (CPL 3).
//!
//! **The uthread** ([`uthread_main`]): the scenario's program, step by
//! step, with notifications enabled between steps and while it halts, so
//! a notification interrupts it and the kernel upcalls into the entry. A
//! step runs with notifications *disabled*: it uses the receive half too
//! (it drains queues), and an upcall in the middle of a drain would make
//! the vcore context wait for a UCQ lock its own uthread holds. Enabling
//! them again checks `notif_pending` and notifies itself if a message came
//! meanwhile (Akaros's `enable_notifs`).
//!
//! A hostile process's vcores run the same two contexts, without the
//! receive half (its shared memory is garbage by design).

use core::sync::atomic::{Ordering, fence};

use event_core::VcoreId;
use vcpd_abi::Vcpd;

use super::abi::KIND_HOSTILE;
use super::program::{self, Step};
use super::runtime::{self, Rx};
use super::syscall;

core::arch::global_asm!(
    ".section .text.vcore_entry, \"ax\"",
    ".global vcore_entry",
    "vcore_entry:",
    // The first instruction: the TSC, for scenario 8 (kernel IPI send to
    // here). The kernel passes the vcore id in rdi.
    "    rdtsc",
    "    shl $32, %rdx",
    "    or %rdx, %rax",
    "    mov %rax, %rsi",
    "    mov %cs, %edx",
    "    xor %ebp, %ebp",
    "    call {rust}",
    "    ud2",
    rust = sym entry,
    options(att_syntax)
);

unsafe extern "C" {
    /// The vcore entry (see the module docs); the kernel jumps here.
    fn vcore_entry();
}

/// Address of the vcore entry, which a process advertises in its VCPDs.
pub fn vcore_entry_addr() -> usize {
    vcore_entry as *const () as usize
}

/// Address of the uthread's start.
pub fn uthread_start_addr() -> usize {
    uthread_main as *const () as usize
}

/// The Rust half of the vcore entry: `v` the vcore, `tsc` the entry's TSC,
/// `cs` its code segment.
extern "C" fn entry(v: u64, tsc: u64, cs: u64) -> ! {
    let tls = runtime::tls();
    tls.entry_tsc.store(tsc, Ordering::Relaxed);
    tls.entry_cs.store(cs, Ordering::Relaxed);
    tls.entries.fetch_add(1, Ordering::Release);
    let v = VcoreId::new(v as u32).unwrap_or(VcoreId::ZERO);
    let pb = runtime::proc_block();
    if pb.kind.load(Ordering::Relaxed) == KIND_HOSTILE {
        // No receive half; clear the flag so the kernel does not enter here
        // again at once.
        runtime::vcpd(v)
            .notif_pending
            .store(false, Ordering::Relaxed);
        tls.online_pending.store(0, Ordering::Relaxed);
    } else {
        let rx = runtime::rx();
        if tls.online_pending.swap(0, Ordering::AcqRel) != 0 {
            rx.vcore_online(v);
        } else {
            rx.handle_events(v);
        }
        if pb.mcp.load(Ordering::Relaxed) != 0 {
            program::recover_preempted(&rx, v);
        }
    }
    syscall::pop_uthread(uthread_main, tls.uthread_stack.load(Ordering::Relaxed))
}

fn disable_notifs(vcpd: &Vcpd) {
    vcpd.notif_disabled.store(true, Ordering::Relaxed);
    // The kernel reads the flag when it interrupts this vcore, on this CPU:
    // program order is all it takes.
    compiler_fence();
}

/// Enables notifications and delivers one that arrived while they were
/// off. Store, fence, load: a sender sets `notif_pending` and then
/// interrupts us; either its interrupt finds notifications enabled (and
/// upcalls), or we find the flag here.
fn enable_notifs(vcpd: &Vcpd) {
    compiler_fence();
    vcpd.notif_disabled.store(false, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    if vcpd.notif_pending.load(Ordering::SeqCst) {
        syscall::self_notify();
    }
}

fn compiler_fence() {
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
}

/// The uthread: the scenario's program, one step at a time (module docs).
extern "C" fn uthread_main(v: u64) -> ! {
    let v = VcoreId::new(v as u32).unwrap_or(VcoreId::ZERO);
    let pb = runtime::proc_block();
    let hostile = pb.kind.load(Ordering::Relaxed) == KIND_HOSTILE;
    let mcp = pb.mcp.load(Ordering::Relaxed) != 0;
    let vcpd = runtime::vcpd(v);
    let rx = runtime::rx();
    // The hostile process never runs the receive half.
    let receiver = (!hostile).then_some(&rx);
    loop {
        if pb.finish.load(Ordering::Acquire) != 0 {
            yield_vcore(receiver, vcpd, v);
            continue;
        }
        disable_notifs(vcpd);
        let step = program::current(pb).step(&rx, v.get());
        let recovered = match receiver {
            Some(rx) if mcp => program::recover_preempted(rx, v),
            _ => 0,
        };
        enable_notifs(vcpd);
        match step {
            Step::Busy => {}
            Step::Idle if recovered > 0 => {}
            Step::Idle => {
                if hostile {
                    // It never drains: a pending flag would end every halt.
                    vcpd.notif_pending.swap(false, Ordering::AcqRel);
                }
                syscall::halt();
            }
            Step::Yield => yield_vcore(receiver, vcpd, v),
        }
    }
}

/// The process's half of a yield, then the kernel's. If the kernel refuses
/// (a message arrived, or a preemption is under way) the vcore comes back
/// online and carries on.
fn yield_vcore(rx: Option<&Rx>, vcpd: &Vcpd, v: VcoreId) {
    disable_notifs(vcpd);
    if let Some(rx) = rx {
        rx.prepare_to_yield(v);
    }
    syscall::yield_vcore();
    if let Some(rx) = rx {
        rx.vcore_online(v);
    }
    enable_notifs(vcpd);
}
