//! Vcore code: what runs on a pcore while a vcore is mapped there.
//!
//! This is the *process's* code (it runs in ring 0 in this demo, but it
//! reaches shared memory only through event-core's receive half and the
//! process's own pointers, as a user process would). One loop,
//! [`run`]:
//!
//! 1. coming online: `vcore_online` (sets `CAN_RCV_MSG`, drains the
//!    mailboxes), and again whenever the kernel restarted the vcore after
//!    a preemption (host rule 3);
//! 2. when the notification handler marked the core, or `notif_pending`
//!    is set: `handle_events` (private then public mailbox, indirections);
//! 3. preemption recovery: any other vcore whose VCPD says `PREEMPTED`
//!    gets its public mailbox drained here (`recover_public_mbox`);
//! 4. one step of the scenario's [`VcoreProgram`]: work, idle, or yield;
//! 5. idle: halt until an interrupt (notification, tick), after checking
//!    with interrupts off that nothing is pending;
//! 6. yield: `prepare_to_yield`, then the kernel's yield; if the kernel
//!    refuses (a message arrived, or a preemption is under way) the vcore
//!    comes back online and carries on.
//!
//! A hostile process's vcores run [`VcoreProgram::step`] only, never the
//! receive half: the garbage they and the kernel CPU write into their
//! mailboxes would make ring-0 receive code fault.

use core::sync::atomic::Ordering;

use vcpd_abi::VcpdFlags;
use x86_64::instructions::interrupts;

use crate::process::{Kind, NONE, ProcState, Process, Rx, vc};
use crate::sched::{self, Pcore};

/// What a vcore's program asks for after one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Did work; run the loop again at once.
    Busy,
    /// Nothing to do: halt until an interrupt.
    Idle,
    /// Give the core back.
    Yield,
}

/// A scenario's vcore behaviour, one step at a time (a callback: the
/// process's "main loop" body).
pub trait VcoreProgram: Sync {
    /// One step on vcore `vcoreid`.
    fn step(&self, rx: &Rx, vcoreid: u32) -> Step;
}

/// Handles events and otherwise sleeps.
#[derive(Debug)]
pub struct IdleProgram;

impl VcoreProgram for IdleProgram {
    fn step(&self, _: &Rx, _: u32) -> Step {
        Step::Idle
    }
}

/// The default program.
pub static IDLE: IdleProgram = IdleProgram;

/// Handles events and yields as soon as there are none.
#[derive(Debug)]
pub struct YieldWhenIdle;

impl VcoreProgram for YieldWhenIdle {
    fn step(&self, _: &Rx, _: u32) -> Step {
        Step::Yield
    }
}

/// See [`YieldWhenIdle`].
pub static YIELD_WHEN_IDLE: YieldWhenIdle = YieldWhenIdle;

/// Runs vcore `v` of `p` on this core until it yields or `p` dies.
pub fn run(p: &'static Process, v: u32) {
    match p.kind() {
        Kind::Cooperative => run_receiver(p, v),
        Kind::Hostile => run_hostile(p, v),
    }
}

/// The process and vcore running on this core (for callbacks such as an
/// event queue's `ev_handler`, which get only the queue).
pub fn current() -> Option<(&'static Process, u32)> {
    let (pid, v) = sched::this_pcore().assigned()?;
    Some((crate::process::get(pid), v))
}

/// Whose public mailbox vcore `v`, running here, is draining now: another
/// vcore's during preemption recovery, else its own.
pub fn mailbox_owner(v: u32) -> u32 {
    match sched::this_pcore().recovering.load(Ordering::Relaxed) {
        NONE => v,
        other => other,
    }
}

fn run_receiver(p: &'static Process, v: u32) {
    let pc = sched::this_pcore();
    let rx = p.receiver();
    pc.restarted.store(false, Ordering::Relaxed);
    rx.vcore_online(vc(v));
    loop {
        if p.state() == ProcState::Dying {
            return;
        }
        if pc.restarted.swap(false, Ordering::AcqRel) {
            rx.vcore_online(vc(v));
        }
        if pc.notified.swap(false, Ordering::AcqRel)
            || rx.vcpd(vc(v)).notif_pending.load(Ordering::Acquire)
        {
            rx.handle_events(vc(v));
        }
        let recovered = if p.is_mcp() {
            recover_preempted(p, &rx, v, pc)
        } else {
            0
        };
        let step = if p.finishing() {
            Step::Yield
        } else {
            p.program().step(&rx, v)
        };
        match step {
            Step::Busy => {}
            Step::Idle if recovered > 0 => {}
            Step::Idle => idle(p, &rx, v, pc),
            Step::Yield => {
                rx.prepare_to_yield(vc(v));
                if p.sys_yield(v).is_ok() {
                    return;
                }
                // Refused: a message arrived after the drain (handle it),
                // or the kernel is preempting us (we park in a moment).
                rx.vcore_online(vc(v));
            }
        }
    }
}

/// Drains the public mailbox of every other vcore marked `PREEMPTED`.
pub(crate) fn recover_preempted(p: &Process, rx: &Rx, me: u32, pc: &Pcore) -> usize {
    let mut n = 0;
    for other in (0..p.nr_vcores()).filter(|&o| o != me) {
        let vcpd = rx.vcpd(vc(other));
        if !vcpd.flags(Ordering::Acquire).contains(VcpdFlags::PREEMPTED)
            || rx.mbox_is_empty(&vcpd.ev_mbox_public)
        {
            continue;
        }
        pc.recovering.store(other, Ordering::Relaxed);
        n += rx.recover_public_mbox(vc(me), vc(other));
        pc.recovering.store(NONE, Ordering::Relaxed);
    }
    p.counters.recovered.fetch_add(n as u64, Ordering::Relaxed);
    n
}

/// Halts until an interrupt unless something is pending. The check runs
/// with interrupts off and `sti; hlt` is one step, so a notification that
/// arrives after the check still ends the halt.
fn idle(p: &Process, rx: &Rx, v: u32, pc: &Pcore) {
    interrupts::disable();
    let pending = pc.notified.load(Ordering::Acquire)
        || pc.restarted.load(Ordering::Acquire)
        || rx.vcpd(vc(v)).notif_pending.load(Ordering::Acquire)
        || p.finishing()
        || p.state() == ProcState::Dying;
    if pending {
        interrupts::enable();
    } else {
        interrupts::enable_and_hlt();
    }
}

fn run_hostile(p: &'static Process, v: u32) {
    let rx = p.receiver();
    loop {
        if p.state() == ProcState::Dying {
            return;
        }
        let step = if p.finishing() {
            Step::Yield
        } else {
            p.program().step(&rx, v)
        };
        match step {
            Step::Busy => {}
            Step::Idle => {
                interrupts::disable();
                if p.state() == ProcState::Dying {
                    interrupts::enable();
                } else {
                    interrupts::enable_and_hlt();
                }
            }
            Step::Yield => {
                if p.sys_yield(v).is_ok() {
                    return;
                }
            }
        }
    }
}
