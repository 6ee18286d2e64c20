//! The kernel half: `send_event` and its public relatives.
//!
//! Every value read from the process's memory is read once into a local
//! (the process may change it under us), every pointer is checked through
//! the host's [`UserMemory`](vcpd_abi::UserMemory) before use, and anything
//! wrong costs that one message: a `log` warning, a counted [`Dropped`], and
//! an `Err` the caller may ignore.

use log::warn;
use vcpd_abi::procdata::{kernel_evt_offset, vcpd_offset};
use vcpd_abi::sync::{AtomicUsize, Ordering, fence};
use vcpd_abi::{
    EV_EVENT, EV_POSIX_SIGNAL, EventMbox, EventMsg, EventQueue, EvqFlags, MAX_NR_EVENT,
    MAX_NUM_VCORES, MboxRef, UserMemoryExt, Vcpd,
};

use crate::host::ProcOps;
use crate::spam::{spam_public_msg, spam_vcore};
use crate::stats::{Dropped, bump};

/// Sends `msg` to the event queue at user address `ev_q`, as the queue's
/// flags ask. `vcoreid` is the kernel's suggestion of which vcore should
/// hear about it (used with `VCORE_APPRO`).
///
/// Never from interrupt context; never with the process lock held. Returns
/// why the message was dropped, if it was (already logged and counted).
pub fn send_event<P: ProcOps>(
    p: &P,
    ev_q: usize,
    msg: &EventMsg,
    vcoreid: u32,
) -> Result<(), Dropped> {
    if p.in_irq_context() {
        return Err(dropped(p, Dropped::IrqContext));
    }
    if p.is_dying() {
        return Err(dropped(p, Dropped::Dying));
    }
    bump(&p.stats().sends);
    p.with_address_space(|| send_in_process(p, ev_q, msg, vcoreid))
        .map_err(|d| dropped(p, d))
}

fn send_in_process<P: ProcOps>(
    p: &P,
    ev_q_addr: usize,
    msg: &EventMsg,
    vcoreid: u32,
) -> Result<(), Dropped> {
    let ev_q = p
        .user_ref::<EventQueue>(ev_q_addr)
        .ok_or(Dropped::BadEventQueue(ev_q_addr))?;
    // One read of the flags: every decision below sees the same ones.
    let flags = ev_q.flags();
    let vcoreid = choose_vcore(p, ev_q, flags, vcoreid)?;
    if flags.contains(EvqFlags::SPAM_PUBLIC) {
        // The message itself goes to public VCPD mailboxes; ev_mbox is ignored.
        spam_public_msg(p, msg, vcoreid, flags)?;
    } else {
        let mbox_addr = match ev_q.ev_mbox.load(Ordering::Acquire) {
            0 => vcpd_mbox_addr(p, vcoreid, flags.contains(EvqFlags::VCORE_PRIVATE)),
            addr => addr,
        };
        let mbox = p
            .user_ref::<EventMbox>(mbox_addr)
            .ok_or(Dropped::BadMailbox(mbox_addr))?;
        post_ev_msg(p, mbox, msg)?;
        if flags.contains(EvqFlags::INDIR) {
            // Store-load: the message must be visible before we read
            // `ev_alert_pending`. A consumer clears that flag, fences, then
            // looks at this mailbox: either it sees our message, or we see
            // its clear and send a new alert.
            fence(Ordering::SeqCst);
            send_indir(p, ev_q, ev_q_addr, vcoreid, flags)?;
        } else {
            // They may want an IPI without an indirection. No fence needed:
            // the notification's read-modify-write of `notif_pending` orders
            // the message before the alert.
            try_notify(p, vcoreid, flags)?;
        }
    }
    if flags.contains(EvqFlags::WAKEUP) {
        // Store-load: whatever we posted (and `notif_pending`) must be
        // visible before we read the process state. The last vcore's yield
        // sets WAITING, fences, then re-checks `notif_pending` (host rule 2):
        // either it sees our post and stays, or we see WAITING and wake it.
        fence(Ordering::SeqCst);
        if p.is_waiting() {
            bump(&p.stats().wakeups);
            p.wakeup();
        }
    }
    Ok(())
}

/// The vcore to alert: the queue's `ev_vcore`, the kernel's suggestion with
/// `VCORE_APPRO`, or the next one round-robin (which overrides both).
fn choose_vcore<P: ProcOps>(
    p: &P,
    ev_q: &EventQueue,
    flags: EvqFlags,
    suggested: u32,
) -> Result<u32, Dropped> {
    let mut vcoreid = if flags.contains(EvqFlags::VCORE_APPRO) {
        suggested
    } else {
        ev_q.ev_vcore.load(Ordering::Relaxed)
    };
    if flags.contains(EvqFlags::ROUNDROBIN) {
        vcoreid = if p.is_mcp() {
            let n = p.num_vcores();
            if n == 0 {
                return Err(Dropped::NoVcores);
            }
            ev_q.ev_vcore.load(Ordering::Relaxed).wrapping_add(1) % n
        } else {
            0
        };
        ev_q.ev_vcore.store(vcoreid, Ordering::Relaxed);
    }
    if !vcoreid_is_safe(p, vcoreid) {
        return Err(Dropped::UnsafeVcore(vcoreid));
    }
    Ok(vcoreid)
}

pub(crate) fn vcoreid_is_safe<P: ProcOps>(p: &P, vcoreid: u32) -> bool {
    (vcoreid as usize) < MAX_NUM_VCORES && vcoreid < p.max_vcores()
}

/// User address of a vcore's public or private VCPD mailbox.
pub(crate) fn vcpd_mbox_addr<P: ProcOps>(p: &P, vcoreid: u32, private: bool) -> usize {
    let field = if private {
        core::mem::offset_of!(Vcpd, ev_mbox_private)
    } else {
        core::mem::offset_of!(Vcpd, ev_mbox_public)
    };
    p.procdata_addr()
        .wrapping_add(vcpd_offset(vcoreid as usize))
        .wrapping_add(field)
}

/// The vcore's VCPD, checked (procdata is user memory like any other).
pub(crate) fn vcpd<P: ProcOps>(p: &P, vcoreid: u32) -> Result<&Vcpd, Dropped> {
    p.user_ref::<Vcpd>(
        p.procdata_addr()
            .wrapping_add(vcpd_offset(vcoreid as usize)),
    )
    .ok_or(Dropped::BadVcpd(vcoreid))
}

/// Posts into a mailbox of whatever type it says it is.
pub(crate) fn post_ev_msg<P: ProcOps>(
    p: &P,
    mbox: &EventMbox,
    msg: &EventMsg,
) -> Result<(), Dropped> {
    let stats = p.stats();
    match mbox.body() {
        Ok(MboxRef::Ucq(ucq)) => ucq::send(ucq, msg, p, &stats.ucq).map_err(|e| {
            // An SCP may get events before it sets its queues up; only an
            // MCP's unready queue is worth a warning.
            if e == ucq::SendError::NotReady && p.is_mcp() {
                warn!(
                    "event: message type {} to an uninitialised UCQ",
                    msg.ev_type
                );
            }
            Dropped::Ucq(e)
        }),
        Ok(MboxRef::Bitmap(bm)) => {
            evbitmap::send(bm, msg.ev_type, &stats.bitmap).map_err(Dropped::Bitmap)
        }
        Ok(MboxRef::Ceq(ceq)) => ceq::send(ceq, msg, p, &stats.ceq)
            .map(drop)
            .map_err(Dropped::Ceq),
        Err(e) => Err(Dropped::UnknownMailboxType(e.0)),
    }
}

/// Posts to one of a vcore's VCPD mailboxes, then sets its
/// `notif_pending`, so a vcore racing to yield sees it.
pub(crate) fn post_vc_msg<P: ProcOps>(
    p: &P,
    vcoreid: u32,
    private: bool,
    msg: &EventMsg,
) -> Result<(), Dropped> {
    let vcpd = vcpd(p, vcoreid)?;
    post_ev_msg(p, vcpd.mbox(private), msg)?;
    // Set even without IPI: the flag is what stops a yield. Release: whoever
    // sees it set sees the message. A swap rather than a store, like every
    // write of this flag, so the writes are totally ordered with the
    // vcore's clearing swap in `handle_events` (see there).
    vcpd.notif_pending.swap(true, Ordering::AcqRel);
    Ok(())
}

/// proc_notify: mark the vcore as having a notification, and interrupt it
/// if it wants interrupts and is mapped.
pub(crate) fn notify_vcore<P: ProcOps>(p: &P, vcoreid: u32) -> Result<(), Dropped> {
    let vcpd = vcpd(p, vcoreid)?;
    bump(&p.stats().notifies);
    vcpd.notif_pending.swap(true, Ordering::AcqRel);
    // Store-load: `notif_pending` must be visible before we read
    // `notif_disabled`. The vcore clears `notif_disabled`, fences, and checks
    // `notif_pending`: one of us sees the other's write.
    fence(Ordering::SeqCst);
    if !vcpd.notif_disabled.load(Ordering::Acquire) && p.vcore_is_mapped(vcoreid) {
        bump(&p.stats().ipis);
        p.ipi_vcore(vcoreid);
    }
    Ok(())
}

/// Notifies the vcore if the queue asked for IPIs and the vcore is mapped
/// (an unlocked peek; a stale answer is harmless).
pub(crate) fn try_notify<P: ProcOps>(p: &P, vcoreid: u32, flags: EvqFlags) -> Result<(), Dropped> {
    if flags.contains(EvqFlags::IPI) && p.vcore_is_mapped(vcoreid) {
        notify_vcore(p, vcoreid)?;
    }
    Ok(())
}

/// Sends an indirection (an `EV_EVENT` naming the queue), unless one is
/// already outstanding and the queue wants throttling.
fn send_indir<P: ProcOps>(
    p: &P,
    ev_q: &EventQueue,
    ev_q_addr: usize,
    vcoreid: u32,
    flags: EvqFlags,
) -> Result<(), Dropped> {
    if !flags.contains(EvqFlags::NOTHROTTLE) && ev_q.ev_alert_pending.load(Ordering::Acquire) {
        // An earlier indirection has not been acknowledged; the consumer
        // clears the flag before draining, so it will see our message.
        bump(&p.stats().indirs_throttled);
        return Ok(());
    }
    ev_q.ev_alert_pending.store(true, Ordering::Relaxed);
    // The flag must be set before any write of the indirection: a consumer
    // that handles it clears the flag, and its clear must land after ours.
    fence(Ordering::Release);
    let indir = EventMsg::new(EV_EVENT).with_arg3(ev_q_addr);
    bump(&p.stats().indirs_sent);
    if flags.contains(EvqFlags::SPAM_INDIR) {
        // Guarantee it reaches some vcore that will run.
        spam_public_msg(p, &indir, vcoreid, flags)
    } else {
        spam_vcore(p, vcoreid, &indir, flags)
    }
}

/// Sends a kernel-initiated event of type `msg.ev_type` to the queue the
/// process registered in `kernel_evts` for it, if any.
pub fn send_kernel_event<P: ProcOps>(p: &P, msg: &EventMsg, vcoreid: u32) -> Result<(), Dropped> {
    let ev_type = usize::from(msg.ev_type);
    if ev_type >= MAX_NR_EVENT {
        return Err(dropped(p, Dropped::BadKernelEventType(msg.ev_type)));
    }
    let slot_addr = p.procdata_addr().wrapping_add(kernel_evt_offset(ev_type));
    let ev_q = p.with_address_space(|| {
        p.user_ref::<AtomicUsize>(slot_addr)
            .map(|slot| slot.load(Ordering::Acquire))
            .ok_or(Dropped::BadEventQueue(slot_addr))
    });
    match ev_q {
        Ok(0) => Ok(()), // the process does not want these
        Ok(ev_q) => send_event(p, ev_q, msg, vcoreid),
        Err(d) => Err(dropped(p, d)),
    }
}

/// Posts `msg` straight to a vcore's VCPD mailbox (private with
/// `VCORE_PRIVATE` in `flags`), whatever the process asked for, and sets
/// its `notif_pending`. Interrupts it only if `flags` has `IPI`.
pub fn post_vcore_event<P: ProcOps>(
    p: &P,
    msg: &EventMsg,
    vcoreid: u32,
    flags: EvqFlags,
) -> Result<(), Dropped> {
    if !vcoreid_is_safe(p, vcoreid) {
        return Err(dropped(p, Dropped::UnsafeVcore(vcoreid)));
    }
    p.with_address_space(|| {
        post_vc_msg(p, vcoreid, flags.contains(EvqFlags::VCORE_PRIVATE), msg)?;
        try_notify(p, vcoreid, flags)
    })
    .map_err(|d| dropped(p, d))
}

/// Sends POSIX signal `sig` as an `EV_POSIX_SIGNAL` kernel event (nothing
/// happens if the process registered no queue for it).
pub fn send_posix_signal<P: ProcOps>(p: &P, sig: u16) -> Result<(), Dropped> {
    send_kernel_event(p, &EventMsg::new(EV_POSIX_SIGNAL).with_arg1(sig), 0)
}

/// Counts and logs a drop, and hands it back.
pub(crate) fn dropped<P: ProcOps>(p: &P, d: Dropped) -> Dropped {
    p.stats().count_drop(&d);
    if d != Dropped::Dying && !matches!(d, Dropped::Ucq(ucq::SendError::NotReady)) {
        warn!("event: message dropped: {d}");
    }
    d
}
