//! What a scenario's vcores run (ring 3): a [`VcoreProgram`], one step at
//! a time, in the uthread (user/entry.rs), and the recovery of preempted
//! peers' public mailboxes.

use core::sync::atomic::Ordering;

use event_core::VcoreId;
use vcpd_abi::VcpdFlags;
use vcpd_abi::vcpd::ROS_HW_CTX;

use super::abi::ProcBlock;
use super::runtime::{self, Rx};

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

/// A scenario's vcore behaviour, one step at a time (the process's "main
/// loop" body). Runs in ring 3, with notifications disabled.
pub trait VcoreProgram: Sync {
    /// One step on vcore `vcoreid`.
    fn step(&self, rx: &Rx, vcoreid: u32) -> Step;
}

/// A program as the process block names it: the address of a static
/// holding the `&dyn` (in the image's read-only data, which ring 3 reads).
pub type ProgramRef = &'static &'static dyn VcoreProgram;

/// Handles events and otherwise sleeps.
#[derive(Debug)]
pub struct IdleProgram;

impl VcoreProgram for IdleProgram {
    fn step(&self, _: &Rx, _: u32) -> Step {
        Step::Idle
    }
}

/// The default program.
pub static IDLE: &dyn VcoreProgram = &IdleProgram;

/// Handles events and yields as soon as there are none.
#[derive(Debug)]
pub struct YieldWhenIdle;

impl VcoreProgram for YieldWhenIdle {
    fn step(&self, _: &Rx, _: u32) -> Step {
        Step::Yield
    }
}

/// See [`YieldWhenIdle`].
pub static YIELD_WHEN_IDLE: &dyn VcoreProgram = &YieldWhenIdle;

/// The program the process block names.
pub(super) fn current(pb: &ProcBlock) -> &'static dyn VcoreProgram {
    let addr = pb.program.load(Ordering::Acquire);
    if addr == 0 || addr % align_of::<ProgramRef>() != 0 {
        return IDLE;
    }
    // SAFETY: the kernel's scenario code (the process's main thread)
    // stores only addresses of `&'static dyn VcoreProgram` statics
    // (`ProgramRef`), which live in the image's read-only data.
    unsafe { *core::ptr::with_exposed_provenance::<&'static dyn VcoreProgram>(addr) }
}

/// Whose public mailbox the running vcore `v` is draining now: another
/// vcore's during preemption recovery, else its own.
pub fn mailbox_owner(v: u32) -> u32 {
    match runtime::tls().recovering.load(Ordering::Relaxed) {
        u32::MAX => v,
        other => other,
    }
}

/// Drains the public mailbox of every other vcore marked `PREEMPTED`, and
/// reads the context the kernel saved for it (`vcore_ctx`, the preemption
/// slot): counted in the TLS block, and whether it is a ring-3 context in
/// the image's text. Returns the messages handled.
pub fn recover_preempted(rx: &Rx, me: VcoreId) -> usize {
    let tls = runtime::tls();
    let n_vc = runtime::proc_block().nr_vcores.load(Ordering::Relaxed);
    let mut n = 0;
    for other in (0..n_vc)
        .filter(|&o| o != me.get())
        .filter_map(VcoreId::new)
    {
        let vcpd = rx.vcpd(other);
        if !vcpd.flags(Ordering::Acquire).contains(VcpdFlags::PREEMPTED) {
            continue;
        }
        if vcpd.vcore_ctx.ctx_type.load(Ordering::Acquire) == ROS_HW_CTX {
            let hw = vcpd.vcore_ctx.tf.read().hw();
            // Still saved (not resumed meanwhile): a consistent copy.
            if vcpd.vcore_ctx.ctx_type.load(Ordering::Acquire) == ROS_HW_CTX {
                tls.ctx_reads.fetch_add(1, Ordering::Relaxed);
                let text = crate::platform::boot::image_layout().text;
                // RPL 3: CPL 3 (a hypervisor may run ring 3 on selectors of
                // its own, so not necessarily `USER_CS` itself).
                if hw.cs & 3 == 3 && text.contains(&(hw.rip as usize)) {
                    tls.ctx_ring3.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if rx.mbox_is_empty(&vcpd.ev_mbox_public) {
            continue;
        }
        tls.recovering.store(other.get(), Ordering::Relaxed);
        n += rx.recover_public_mbox(me, other);
        tls.recovering.store(u32::MAX, Ordering::Relaxed);
    }
    tls.recovered.fetch_add(n as u64, Ordering::Relaxed);
    n
}
