//! The way in from ring 3, and the way back: what the kernel does with
//! every exception, system call and interrupt that arrives from a vcore,
//! and how ring 3 continues afterwards.
//!
//! The platform's dispatcher calls [`on_entry`] (its user hook) on the
//! trap stack, interrupts off. An exception kills the process (fault.rs).
//! A system call runs (syscall.rs). Then, before the `iretq` back to ring
//! 3, [`before_user`] decides whether there is a ring 3 to go back to:
//!
//! 1. the process is dying (killed, exited, destroyed): the run ends
//!    ([`Stop::Dead`]);
//! 2. the vcore is no longer mapped to this core: it was bulk-preempted,
//!    and this interrupt is the preemption IPI (or the first entry after
//!    it): the ring-3 context is saved in the VCPD's preemption slot,
//!    `vcore_ctx` (`VC_PREEMPTED` is already set by `VcoreSet::preempt`),
//!    and the run ends ([`Stop::Preempted`]): the core parks until the
//!    vcore is restarted, and then resumes that context (sched.rs);
//! 3. a notification is pending (`notif_pending`) and the vcore has
//!    notifications enabled (`notif_disabled` clear): the *upcall*. The
//!    ring-3 context is saved in the VCPD's `uthread_ctx`, notifications
//!    are disabled, and the frame becomes the vcore entry on the vcore's
//!    stack; the process's entry runs the receive half and pops the saved
//!    context with the `POP_UTHREAD` system call. With notifications
//!    disabled the kernel does nothing: the flag stays set, and the vcore
//!    sees it when it enables them again.
//!
//! The notification IPI's handler does nothing but count (sched.rs): the
//! decision is here, on the way back to ring 3, so a notification that
//! interrupts a halted vcore in the kernel (the `HALT` system call) is
//! delivered the same way as one that interrupts ring-3 code.

use x86_64::instructions::interrupts;

use crate::platform::idt::{self, FromUser, InterruptFrame};
use crate::platform::{exceptions, percpu, ring3};
use crate::process::{self, ProcState, Process, context, fault, sched, syscall};

/// Why a vcore's ring-3 run on a core ended (`ring3::enter_user`'s result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Stop {
    /// It yielded: the core is free.
    Yielded = 1,
    /// It was bulk-preempted: its context is in its VCPD's `vcore_ctx`,
    /// and the core waits for its restart.
    Preempted = 2,
    /// Its process is dying.
    Dead = 3,
}

impl Stop {
    /// The reason `enter_user` returned.
    pub fn from_raw(raw: u64) -> Self {
        match raw {
            1 => Self::Yielded,
            2 => Self::Preempted,
            _ => Self::Dead,
        }
    }
}

/// Installs [`on_entry`] as the dispatcher's user hook.
pub fn init() {
    idt::set_user_hook(on_entry);
}

/// Ends the vcore's ring-3 run on this core (the pcore loop continues).
/// Call only from the trap path of a ring-3 run, holding nothing.
pub fn leave(stop: Stop) -> ! {
    interrupts::disable();
    // SAFETY: we are on the trap stack of a run `enter_user` started on
    // this CPU (only the trap path calls this), interrupts are off, and
    // callers hold no guards.
    unsafe { ring3::leave_user(stop as u64) }
}

fn on_entry(frame: &mut InterruptFrame, why: FromUser) {
    let Some((pid, v)) = sched::this_pcore().running() else {
        // Ring 3 without a vcore: a kernel bug.
        exceptions::unexpected_interrupt(frame);
    };
    let p = process::get(pid);
    match why {
        FromUser::Exception => fault::kill(p, v, frame),
        FromUser::Syscall => syscall::handle(p, v, frame),
        FromUser::Interrupt => {}
    }
    if let Err(stop) = before_user(p, v, frame) {
        leave(stop);
    }
}

/// How ring 3 continues on this core with `frame` (module docs): `Ok` to
/// go on (perhaps into the vcore entry), or why the run ends. The pcore
/// loop calls it before every entry too.
pub fn before_user(p: &Process, v: u32, frame: &mut InterruptFrame) -> Result<(), Stop> {
    if p.state() == ProcState::Dying {
        return Err(Stop::Dead);
    }
    let vcpd = p.vcpd(v).ok_or(Stop::Dead)?;
    if !p.vcore_on(v, percpu::current_index()) {
        context::save(frame, &vcpd.vcore_ctx);
        p.counters
            .ctx_saves
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        return Err(Stop::Preempted);
    }
    upcall_if_pending(p, v, frame)
}

fn upcall_if_pending(p: &Process, v: u32, frame: &mut InterruptFrame) -> Result<(), Stop> {
    use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
    let vcpd = p.vcpd(v).ok_or(Stop::Dead)?;
    if vcpd.notif_disabled.load(Acquire) || !vcpd.notif_pending.load(Acquire) {
        return Ok(());
    }
    let Some(entry) = context::vcore_entry(vcpd, v) else {
        return Err(fault::kill_for(
            p,
            v,
            "its VCPD advertises a non-canonical vcore entry or stack",
        ));
    };
    context::save(frame, &vcpd.uthread_ctx);
    vcpd.notif_disabled.store(true, Release);
    *frame = entry;
    p.counters.upcalls.fetch_add(1, Relaxed);
    Ok(())
}
