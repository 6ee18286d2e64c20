//! The kernel half: `send_event` and its public relatives.
//!
//! Every value read from the process's memory is read once into a local
//! (the process may change it under us), every user pointer is checked
//! through the host's [`UserMemory`](vcpd_abi::UserMemory) before use, and
//! anything wrong costs that one message: a counted [`Dropped`], a
//! rate-limited `log` warning, and an `Err` the caller may ignore.

use core::mem::offset_of;
use vcpd_abi::sync::{Ordering, fence};

use vcpd_abi::{
    EV_EVENT, EV_POSIX_SIGNAL, EventMbox, EventMsg, EventQueue, EventQueueBig, EvqFlags,
    MAX_NR_EVENT, MboxRef, UserAddr, Vcpd,
};

use crate::host::{OnCpu, ProcOps, Sending, UcqHost};
use crate::ids::VcoreId;
use crate::spam::{spam_public_msg, spam_vcore};
use crate::stats::{BadAddr, Counter, Dropped};
use crate::vcores::{ProcControl, ProcState, VcoreLists};

/// Sends `msg` to the event queue at user address `ev_q`, as the queue's
/// flags ask. `vcoreid` is the kernel's suggestion of which vcore should
/// hear about it (used with `VCORE_APPRO`).
///
/// Never from interrupt context. Returns why the message was dropped, if
/// it was (already counted, and logged within the rate limit).
///
/// ```
/// use event_core::abi::{EventMsg, EventQueueBig, EvqFlags};
/// use event_core::recv::setup::{self, MboxKind};
/// use event_core::testing::ToyHost;
/// use event_core::{VcoreId, send_event};
///
/// // The process: a queue with its own UCQ, alerting vcore 1 by indirection.
/// let host = ToyHost::new();
/// let (q, big) = host.alloc::<EventQueueBig>();
/// let v1 = VcoreId::new(1).unwrap();
/// setup::init_big_evq(big, MboxKind::Ucq, EvqFlags::INDIR | EvqFlags::IPI, v1, &host).unwrap();
///
/// // The kernel: post, then alert vcore 1 (an indirection and an IPI).
/// send_event(&host, q.cast(), &EventMsg::new(9).with_arg2(42), VcoreId::ZERO).unwrap();
/// assert_eq!(host.ipis(), [1]);
///
/// // Vcore 1 handles its notification: the indirection drains the queue.
/// let rx = host.receiver();
/// let got = std::sync::atomic::AtomicU32::new(0);
/// rx.handlers()
///     .register(9, |_, _, msg, seen| {
///         // SAFETY (doc example): `seen` is the address of `got` below.
///         let seen = unsafe { &*(seen as *const std::sync::atomic::AtomicU32) };
///         seen.store(msg.ev_arg2, std::sync::atomic::Ordering::Relaxed);
///     }, &got as *const _ as usize)
///     .unwrap();
/// rx.handle_events(v1);
/// assert_eq!(got.load(std::sync::atomic::Ordering::Relaxed), 42);
/// ```
pub fn send_event<P: ProcOps>(
    p: &P,
    ev_q: UserAddr<EventQueue>,
    msg: &EventMsg,
    vcoreid: VcoreId,
) -> Result<(), Dropped> {
    let p = &OnCpu::new(p);
    check_can_send(p)?;
    p.count(Counter::Sends);
    p.with_address_space(|| send_in_process(p, ev_q, msg, vcoreid, &mut 0))
        .map_err(|d| dropped(p, d))
}

/// The guards every entry point shares: not from an interrupt, not to a
/// dying process.
pub(crate) fn check_can_send<P: ProcOps>(p: &P) -> Result<(), Dropped> {
    if p.in_irq_context() {
        return Err(dropped(p, Dropped::IrqContext));
    }
    if p.events().vcores().state() == ProcState::Dying {
        return Err(dropped(p, Dropped::Dying));
    }
    Ok(())
}

/// Sends `msgs` (one, or a batch: posted in order, alerted once) to the
/// queue; `posted` says how many of them the process is sure to find
/// (all of them on success).
pub(crate) fn send_in_process<P: Sending>(
    p: &P,
    ev_q_addr: UserAddr<EventQueue>,
    msgs: impl Msgs,
    suggested: VcoreId,
    posted: &mut usize,
) -> Result<(), Dropped> {
    // A big queue (the usual kind: its mailbox embedded) is checked whole,
    // once, so its mailbox needs no check of its own below. A slim queue
    // that ends too near the end of user memory for that is checked as
    // what it is.
    let big = ev_q_addr.cast::<EventQueueBig>().check(p);
    let ev_q = match big {
        Some(big) => &big.evq,
        None => check(p, ev_q_addr).map_err(|why| Dropped::BadEventQueue {
            addr: ev_q_addr.get(),
            why,
        })?,
    };
    if evq_is_unset(ev_q) {
        return Err(Dropped::EventQueueNotSetUp(ev_q_addr.get()));
    }
    // One read of the flags: every decision below sees the same ones.
    let flags = ev_q.flags();
    let delivered = deliver(p, ev_q, big, ev_q_addr, msgs, suggested, flags, posted);
    // The wakeup runs whatever happened above: a WAITING process that asked
    // to be woken by this queue is woken even if this message was dropped.
    let woken = if flags.contains(EvqFlags::WAKEUP) {
        wake_if_waiting(p)
    } else {
        Ok(())
    };
    delivered.and(woken)
}

#[allow(clippy::too_many_arguments)] // the send's whole context, once
fn deliver<P: Sending>(
    p: &P,
    ev_q: &EventQueue,
    big: Option<&EventQueueBig>,
    ev_q_addr: UserAddr<EventQueue>,
    msgs: impl Msgs,
    suggested: VcoreId,
    flags: EvqFlags,
    posted: &mut usize,
) -> Result<(), Dropped> {
    let vcoreid = choose_vcore(p, ev_q, flags, suggested)?;
    if flags.contains(EvqFlags::SPAM_PUBLIC) {
        // The messages themselves go to public VCPD mailboxes; ev_mbox is
        // ignored. All or nothing: a batch is spammed as one.
        spam_public_msg(p, msgs, vcoreid, flags)?;
        *posted = msgs.len();
        return Ok(());
    }
    let result = match ev_q.ev_mbox.load(Ordering::Acquire) {
        0 => {
            let private = flags.contains(EvqFlags::VCORE_PRIVATE);
            post_vc_mbox(p, vcpd(p, vcoreid)?, vcoreid, private, msgs, posted)
        }
        addr if addr.wrapping_sub(ev_q_addr.get()) < size_of::<EventQueue>() => {
            return Err(Dropped::MailboxIsTheQueue(addr));
        }
        addr => {
            let embedded = ev_q_addr
                .get()
                .wrapping_add(offset_of!(EventQueueBig, ev_imbox));
            let mbox = match big {
                Some(big) if addr == embedded => &big.ev_imbox,
                _ => check(p, UserAddr::<EventMbox>::new(addr))
                    .map_err(|why| Dropped::BadMailbox { addr, why })?,
            };
            msgs.post(p, mbox, posted).map_err(|d| match d {
                Dropped::MailboxNotSetUp { vcore: None, .. } => {
                    Dropped::MailboxNotSetUp { addr, vcore: None }
                }
                d => d,
            })
        }
    };
    // A batch refused part-way is alerted for the part that went in. (A
    // single message is all or nothing: for it this compiles to `?`.)
    let refused = match result {
        Ok(()) => None,
        Err(d) if msgs.len() == 1 || *posted == 0 => return Err(d),
        Err(d) => Some(d),
    };
    let alerted = if flags.contains(EvqFlags::INDIR) {
        // Store-load: the message must be visible before we read
        // `ev_alert_pending`. A consumer clears that flag, fences, then
        // looks at this mailbox: either it sees our message, or we see its
        // clear and send a new alert.
        fence(Ordering::SeqCst);
        send_indir(p, ev_q, ev_q_addr, vcoreid, flags)
    } else {
        // They may want an IPI without an indirection. No fence needed:
        // the notification's read-modify-write of `notif_pending` orders
        // the message before the alert.
        try_notify(p, vcoreid, flags)
    };
    match refused {
        Some(d) => Err(d),
        None => alerted,
    }
}

/// A user address checked through the host, with the reason if refused.
fn check<P: ProcOps, T: vcpd_abi::SharedMem>(p: &P, a: UserAddr<T>) -> Result<&T, BadAddr> {
    if a.is_null() {
        Err(BadAddr::Null)
    } else if !a.is_aligned() {
        Err(BadAddr::Misaligned {
            align: align_of::<T>(),
        })
    } else {
        a.check(p).ok_or(BadAddr::NotUserMemory)
    }
}

/// An all-zero queue was never set up (`setup::init_evq` refuses to make
/// one): delivering to vcore 0's VCPD mailbox with no alert is what it
/// would mean, and never what a process wants.
fn evq_is_unset(q: &EventQueue) -> bool {
    q.ev_flags.load(Ordering::Relaxed) == 0
        && q.ev_mbox.load(Ordering::Relaxed) == 0
        && q.ev_vcore.load(Ordering::Relaxed) == 0
        && q.ev_handler.load(Ordering::Relaxed) == 0
        && q.ev_udata.load(Ordering::Relaxed) == 0
        && !q.ev_alert_pending.load(Ordering::Relaxed)
}

/// WAKEUP: if the process is WAITING, wake it.
fn wake_if_waiting<P: Sending>(p: &P) -> Result<(), Dropped> {
    // Store-load: whatever we posted (and `notif_pending`) must be visible
    // before we read the process state. The last vcore's yield sets
    // WAITING, fences, then re-checks `notif_pending`: either it sees our
    // post and stays, or we see WAITING and wake it.
    fence(Ordering::SeqCst);
    let vcores = p.events().vcores();
    if vcores.state() != ProcState::Waiting {
        return Ok(());
    }
    if vcores.wakeup().map_err(Dropped::LockHeld)? {
        p.count(Counter::Wakeups);
        p.make_runnable();
    }
    Ok(())
}

/// The vcore to alert: the queue's `ev_vcore`, the kernel's suggestion with
/// `VCORE_APPRO`, or the next one round-robin (which overrides both).
fn choose_vcore<P: Sending>(
    p: &P,
    ev_q: &EventQueue,
    flags: EvqFlags,
    suggested: VcoreId,
) -> Result<VcoreId, Dropped> {
    let mut raw = if flags.contains(EvqFlags::VCORE_APPRO) {
        suggested.get()
    } else {
        ev_q.ev_vcore.load(Ordering::Relaxed)
    };
    if flags.contains(EvqFlags::ROUNDROBIN) {
        let vcores = p.events().vcores();
        // Akaros's count of vcores granted now; with none granted (WAITING,
        // or fully preempted) the choice is vcore 0, and the spam or
        // WAKEUP that follows finds whoever will run.
        let n = if vcores.is_mcp() {
            vcores.num_vcores()
        } else {
            0
        };
        raw = match n {
            0 => 0,
            n => ev_q.ev_vcore.load(Ordering::Relaxed).wrapping_add(1) % n,
        };
        ev_q.ev_vcore.store(raw, Ordering::Relaxed);
    }
    safe_vcore(p, raw).ok_or(Dropped::UnsafeVcore(raw))
}

/// `raw` as a vcore of this process, if it is one.
pub(crate) fn safe_vcore<P: Sending>(p: &P, raw: u32) -> Option<VcoreId> {
    let v = VcoreId::new(raw)?;
    (raw < p.events().vcores().max_vcores() && v.index() < p.procdata().vcpds.len()).then_some(v)
}

/// The vcore's VCPD.
pub(crate) fn vcpd<P: Sending>(p: &P, v: VcoreId) -> Result<&Vcpd, Dropped> {
    p.procdata()
        .vcpds
        .get(v.index())
        .ok_or(Dropped::BadVcpd(v.get()))
}

/// Posts into a mailbox of whatever type it says it is.
pub(crate) fn post_ev_msg<P: Sending>(
    p: &P,
    mbox: &EventMbox,
    msg: &EventMsg,
) -> Result<(), Dropped> {
    let stats = p.events().stats();
    match mbox.body() {
        Ok(MboxRef::Ucq(ucq)) => ucq::send(ucq, msg, &UcqHost(p), &stats.ucq).map_err(Dropped::Ucq),
        Ok(MboxRef::Bitmap(bm)) => {
            evbitmap::send(bm, msg.ev_type, &stats.bitmap).map_err(Dropped::Bitmap)
        }
        Ok(MboxRef::Ceq(ceq)) => ceq::send(ceq, msg, p, &stats.ceq)
            .map(drop)
            .map_err(Dropped::Ceq),
        Err(e) if e.0 == 0 => Err(Dropped::MailboxNotSetUp {
            addr: 0,
            vcore: None,
        }),
        Err(e) => Err(Dropped::UnknownMailboxType(e.0)),
    }
}

/// One message (`&EventMsg`) or a batch (`&[EventMsg]`). The send path is
/// written once over this and compiled for each, so a single send pays
/// nothing for batching.
pub(crate) trait Msgs: Copy {
    /// How many.
    fn len(self) -> usize;

    /// Posts them in order into `mbox`, counting each in `posted`, and
    /// stops at the first one refused: why.
    fn post<P: Sending>(self, p: &P, mbox: &EventMbox, posted: &mut usize) -> Result<(), Dropped>;
}

impl Msgs for &EventMsg {
    #[inline]
    fn len(self) -> usize {
        1
    }

    #[inline]
    fn post<P: Sending>(self, p: &P, mbox: &EventMbox, posted: &mut usize) -> Result<(), Dropped> {
        post_ev_msg(p, mbox, self)?;
        *posted = 1;
        Ok(())
    }
}

impl Msgs for &[EventMsg] {
    #[inline]
    fn len(self) -> usize {
        <[EventMsg]>::len(self)
    }

    fn post<P: Sending>(self, p: &P, mbox: &EventMbox, posted: &mut usize) -> Result<(), Dropped> {
        if let Ok(MboxRef::Ucq(ucq)) = mbox.body() {
            // The common burst target, without a type dispatch per message.
            let (host, stats) = (UcqHost(p), &p.events().stats().ucq);
            for msg in self {
                ucq::send(ucq, msg, &host, stats).map_err(Dropped::Ucq)?;
                *posted += 1;
            }
            return Ok(());
        }
        for msg in self {
            post_ev_msg(p, mbox, msg)?;
            *posted += 1;
        }
        Ok(())
    }
}

/// Posts to one of a vcore's VCPD mailboxes (without `notif_pending`).
#[inline]
fn post_vc_mbox<P: Sending>(
    p: &P,
    vcpd: &Vcpd,
    v: VcoreId,
    private: bool,
    msgs: impl Msgs,
    posted: &mut usize,
) -> Result<(), Dropped> {
    msgs.post(p, vcpd.mbox(private), posted)
        .map_err(|d| match d {
            Dropped::MailboxNotSetUp { addr, .. } => Dropped::MailboxNotSetUp {
                addr,
                vcore: Some(v.get()),
            },
            d => d,
        })
}

/// Posts to one of a vcore's VCPD mailboxes, then sets its
/// `notif_pending`, so a vcore racing to yield sees it. A batch refused
/// part-way still sets it for the part that went in.
pub(crate) fn post_vc_msg<P: Sending>(
    p: &P,
    v: VcoreId,
    private: bool,
    msgs: impl Msgs,
) -> Result<(), Dropped> {
    let vcpd = vcpd(p, v)?;
    let mut posted = 0;
    let result = post_vc_mbox(p, vcpd, v, private, msgs, &mut posted);
    if result.is_err() && (msgs.len() == 1 || posted == 0) {
        return result;
    }
    // Set even without IPI: the flag is what stops a yield. Release: whoever
    // sees it set sees the message. A swap rather than a store, like every
    // write of this flag, so the writes are totally ordered with the
    // vcore's clearing swap in `handle_events` (see there).
    vcpd.notif_pending.swap(true, Ordering::AcqRel);
    result
}

/// proc_notify: mark the vcore as having a notification, and interrupt its
/// core if it wants interrupts and is mapped.
pub(crate) fn notify_vcore<P: Sending>(p: &P, v: VcoreId) -> Result<(), Dropped> {
    let vcpd = vcpd(p, v)?;
    p.count(Counter::Notifies);
    vcpd.notif_pending.swap(true, Ordering::AcqRel);
    // Store-load: `notif_pending` must be visible before we read
    // `notif_disabled`. The vcore clears `notif_disabled`, fences, and checks
    // `notif_pending`: one of us sees the other's write.
    fence(Ordering::SeqCst);
    if !vcpd.notif_disabled.load(Ordering::Acquire) {
        if let Some(pcore) = p.events().vcores().pcore_of(v) {
            p.count(Counter::Ipis);
            p.ipi(pcore);
        }
    }
    Ok(())
}

/// Notifies the vcore if the queue asked for IPIs and the vcore is mapped
/// (an unlocked peek; a stale answer is harmless).
pub(crate) fn try_notify<P: Sending>(p: &P, v: VcoreId, flags: EvqFlags) -> Result<(), Dropped> {
    if flags.contains(EvqFlags::IPI) && p.events().vcores().pcore_of(v).is_some() {
        notify_vcore(p, v)?;
    }
    Ok(())
}

/// Sends an indirection (an `EV_EVENT` naming the queue), unless one is
/// already outstanding and the queue wants throttling.
fn send_indir<P: Sending>(
    p: &P,
    ev_q: &EventQueue,
    ev_q_addr: UserAddr<EventQueue>,
    v: VcoreId,
    flags: EvqFlags,
) -> Result<(), Dropped> {
    if !flags.contains(EvqFlags::NOTHROTTLE) && ev_q.ev_alert_pending.load(Ordering::Acquire) {
        // An earlier indirection has not been acknowledged; the consumer
        // clears the flag before draining, so it will see our message.
        p.count(Counter::IndirsThrottled);
        return Ok(());
    }
    ev_q.ev_alert_pending.store(true, Ordering::Relaxed);
    // The flag must be set before any write of the indirection: a consumer
    // that handles it clears the flag, and its clear must land after ours.
    fence(Ordering::Release);
    let indir = EventMsg::new(EV_EVENT).with_arg3(ev_q_addr.get());
    p.count(Counter::IndirsSent);
    if flags.contains(EvqFlags::SPAM_INDIR) {
        // Guarantee it reaches some vcore that will run.
        spam_public_msg(p, &indir, v, flags)
    } else {
        spam_vcore(p, v, &indir, flags)
    }
}

/// Sends a kernel-initiated event of type `msg.ev_type` to the queue the
/// process registered in `kernel_evts` for it, if any.
///
/// ```
/// use event_core::abi::{EV_ALARM, EventMsg, EventQueue, EvqFlags, UserAddr};
/// use event_core::recv::setup;
/// use event_core::testing::ToyHost;
/// use event_core::{VcoreId, send_kernel_event};
///
/// let host = ToyHost::new();
/// // Nothing registered for alarms: nothing happens.
/// send_kernel_event(&host, &EventMsg::new(EV_ALARM), VcoreId::ZERO).unwrap();
/// // The process asks for alarms on vcore 3's VCPD mailbox, with an IPI.
/// let (q, queue) = host.alloc::<EventQueue>();
/// let v3 = VcoreId::new(3).unwrap();
/// setup::init_evq(queue, UserAddr::NULL, EvqFlags::IPI, v3).unwrap();
/// host.receiver().enable_kevent(EV_ALARM, q).unwrap();
/// send_kernel_event(&host, &EventMsg::new(EV_ALARM), VcoreId::ZERO).unwrap();
/// assert_eq!(host.ipis(), [3]);
/// ```
pub fn send_kernel_event<P: ProcOps>(
    p: &P,
    msg: &EventMsg,
    vcoreid: VcoreId,
) -> Result<(), Dropped> {
    let Some(slot) = p.procdata().kernel_evts.get(usize::from(msg.ev_type)) else {
        return Err(dropped(p, Dropped::BadKernelEventType(msg.ev_type)));
    };
    debug_assert!(usize::from(msg.ev_type) < MAX_NR_EVENT);
    match slot.load(Ordering::Acquire) {
        0 => Ok(()), // the process does not want these
        ev_q => send_event(p, UserAddr::new(ev_q), msg, vcoreid),
    }
}

/// Posts `msg` straight to a vcore's VCPD mailbox (private with
/// `VCORE_PRIVATE` in `flags`), whatever the process asked for, and sets
/// its `notif_pending`. Interrupts it only if `flags` has `IPI`.
///
/// ```
/// use event_core::abi::{EventMsg, EvqFlags};
/// use event_core::testing::ToyHost;
/// use event_core::{VcoreId, post_vcore_event};
///
/// let host = ToyHost::new();
/// let v2 = VcoreId::new(2).unwrap();
/// post_vcore_event(&host, &EventMsg::new(5), v2, EvqFlags::VCORE_PRIVATE).unwrap();
/// let rx = host.receiver();
/// assert!(rx.vcpd(v2).notif_pending.load(core::sync::atomic::Ordering::Relaxed));
/// let private = &rx.vcpd(v2).ev_mbox_private;
/// assert_eq!(rx.extract_one(private).map(|m| m.ev_type), Some(5));
/// ```
pub fn post_vcore_event<P: ProcOps>(
    p: &P,
    msg: &EventMsg,
    vcoreid: VcoreId,
    flags: EvqFlags,
) -> Result<(), Dropped> {
    let p = &OnCpu::new(p);
    check_can_send(p)?;
    let Some(v) = safe_vcore(p, vcoreid.get()) else {
        return Err(dropped(p, Dropped::UnsafeVcore(vcoreid.get())));
    };
    p.with_address_space(|| {
        post_vc_msg(p, v, flags.contains(EvqFlags::VCORE_PRIVATE), msg)?;
        try_notify(p, v, flags)
    })
    .map_err(|d| dropped(p, d))
}

/// Sends POSIX signal `sig` as an `EV_POSIX_SIGNAL` kernel event (nothing
/// happens if the process registered no queue for it).
///
/// ```
/// use event_core::abi::{EV_POSIX_SIGNAL, EventQueue, EvqFlags, UserAddr};
/// use event_core::recv::setup;
/// use event_core::testing::ToyHost;
/// use event_core::{VcoreId, send_posix_signal};
///
/// let host = ToyHost::new();
/// let (q, queue) = host.alloc::<EventQueue>();
/// setup::init_evq(queue, UserAddr::NULL, EvqFlags::SPAM_PUBLIC, VcoreId::ZERO).unwrap();
/// let rx = host.receiver();
/// rx.enable_kevent(EV_POSIX_SIGNAL, q).unwrap();
/// send_posix_signal(&host, 15).unwrap();
/// let sig = rx.extract_one(&rx.vcpd(VcoreId::ZERO).ev_mbox_public).unwrap();
/// assert_eq!((sig.ev_type, sig.ev_arg1), (EV_POSIX_SIGNAL, 15));
/// ```
pub fn send_posix_signal<P: ProcOps>(p: &P, sig: u16) -> Result<(), Dropped> {
    send_kernel_event(
        p,
        &EventMsg::new(EV_POSIX_SIGNAL).with_arg1(sig),
        VcoreId::ZERO,
    )
}

/// Counts a drop once, logs it within the process's rate limit, and hands
/// it back.
#[cold]
pub(crate) fn dropped<P: ProcOps>(p: &P, d: Dropped) -> Dropped {
    let stats = p.events().stats();
    if let Some(nth) = stats.count_drop(&d) {
        if d != Dropped::Dying {
            log::warn!("event: message dropped ({nth} drops so far): {d}");
        }
    }
    d
}
