//! Setting mailboxes and event queues up, and choosing which kernel events
//! to receive. All of this runs in the process, before (or while) the
//! kernel sends.

use core::fmt;

use vcpd_abi::sync::{AtomicI32, Ordering};
use vcpd_abi::{
    CeqEvent, CeqOp, EV_MBOX_BITMAP, EV_MBOX_CEQ, EV_MBOX_UCQ, EventMbox, EventQueue,
    EventQueueBig, EvqFlags, UserAddr,
};

use super::{EvqHandlerFn, Receiver, VcoreRuntime};
use crate::ids::VcoreId;

/// Why a mailbox could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The runtime had no page for the UCQ.
    OutOfPages,
    /// The UCQ refused its pages.
    Ucq(ucq::InitError),
    /// The CEQ refused its arrays.
    Ceq(ceq::InitError),
    /// The event type is not below `MAX_NR_EVENT`.
    BadEventType(u16),
    /// The queue would be all zeroes (no flags, no mailbox, vcore 0), which
    /// the kernel reports as "not set up": give it a flag or a mailbox.
    QueueLooksUnset,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfPages => f.write_str("no page for a UCQ"),
            Self::Ucq(e) => write!(f, "{e}"),
            Self::Ceq(e) => write!(f, "{e}"),
            Self::BadEventType(t) => write!(f, "event type {t} out of range"),
            Self::QueueLooksUnset => f.write_str(
                "an event queue with no flags, no mailbox and vcore 0 looks unset to the kernel",
            ),
        }
    }
}

impl core::error::Error for SetupError {}

/// The kind of mailbox to create, with what it needs.
#[derive(Debug, Clone, Copy)]
pub enum MboxKind<'a> {
    /// A UCQ (two pages come from the runtime).
    Ucq,
    /// An event bitmap.
    Bitmap,
    /// A CEQ over the given arrays.
    Ceq {
        /// Coalescing operation.
        op: CeqOp,
        /// The events array.
        events: &'a [CeqEvent],
        /// The ring (power-of-two length).
        ring: &'a [AtomicI32],
    },
}

/// Sets `mbox` up as a mailbox of `kind`; the type tag is published last,
/// so the kernel never sees a tagged but unset-up mailbox.
///
/// ```
/// use event_core::abi::{EventMbox, MboxType};
/// use event_core::recv::setup::{self, MboxKind};
/// use event_core::testing::ToyHost;
///
/// let host = ToyHost::new();
/// let (_, mbox) = host.alloc::<EventMbox>();
/// setup::init_mbox(mbox, MboxKind::Bitmap, &host).unwrap();
/// assert_eq!(mbox.kind(), Ok(MboxType::Bitmap));
/// ```
pub fn init_mbox<R: VcoreRuntime>(
    mbox: &EventMbox,
    kind: MboxKind<'_>,
    rt: &R,
) -> Result<(), SetupError> {
    let tag = match kind {
        MboxKind::Ucq => {
            let first = rt.alloc_page().ok_or(SetupError::OutOfPages)?;
            let Some(spare) = rt.alloc_page() else {
                rt.free_page(first);
                return Err(SetupError::OutOfPages);
            };
            // SAFETY: two distinct fresh pages from the runtime (the
            // process's own memory, per `VcoreRuntime::alloc_page`), into a
            // mailbox of the process's procdata or queues (see `own_mbox`
            // in the parent module: not yet a promise of this safe fn).
            unsafe { ucq::init(mbox.as_ucq(), first, spare) }.map_err(SetupError::Ucq)?;
            EV_MBOX_UCQ
        }
        MboxKind::Bitmap => {
            evbitmap::init(mbox.as_evbitmap());
            EV_MBOX_BITMAP
        }
        MboxKind::Ceq { op, events, ring } => {
            // SAFETY: the caller's arrays, in the process's own memory; that
            // they outlive the mailbox is not yet a promise of this safe fn
            // (see `own_mbox` in the parent module).
            unsafe { ceq::init(mbox.as_ceq(), op, events, ring) }.map_err(SetupError::Ceq)?;
            EV_MBOX_CEQ
        }
    };
    mbox.mbox_type.store(tag, Ordering::Release);
    Ok(())
}

/// Sets a slim event queue up to deliver into the mailbox at `mbox`
/// (null: the chosen vcore's VCPD mailbox, public or private per `flags`).
///
/// Refuses a queue that would be all zeroes (no flags, null mailbox,
/// vcore 0): the kernel drops messages to such a queue as "not set up".
///
/// ```
/// use event_core::abi::{EventQueue, EvqFlags, UserAddr};
/// use event_core::recv::setup::{self, SetupError};
/// use event_core::testing::ToyHost;
/// use event_core::VcoreId;
///
/// let host = ToyHost::new();
/// let (_, q) = host.alloc::<EventQueue>();
/// // Spammed to public VCPD mailboxes, vcore 2 preferred.
/// let v2 = VcoreId::new(2).unwrap();
/// setup::init_evq(q, UserAddr::NULL, EvqFlags::SPAM_PUBLIC, v2).unwrap();
/// assert_eq!(
///     setup::init_evq(q, UserAddr::NULL, EvqFlags::empty(), VcoreId::ZERO),
///     Err(SetupError::QueueLooksUnset)
/// );
/// ```
pub fn init_evq(
    ev_q: &EventQueue,
    mbox: UserAddr<EventMbox>,
    flags: EvqFlags,
    vcoreid: VcoreId,
) -> Result<(), SetupError> {
    if flags.to_raw() == 0 && mbox.is_null() && vcoreid == VcoreId::ZERO {
        return Err(SetupError::QueueLooksUnset);
    }
    ev_q.ev_mbox.store(mbox.get(), Ordering::Relaxed);
    ev_q.ev_vcore.store(vcoreid.get(), Ordering::Relaxed);
    ev_q.ev_alert_pending.store(false, Ordering::Relaxed);
    ev_q.ev_handler.store(0, Ordering::Relaxed);
    ev_q.ev_udata.store(0, Ordering::Relaxed);
    // Release: the kernel reads the flags first; everything above is set.
    ev_q.ev_flags.store(flags.to_raw(), Ordering::Release);
    Ok(())
}

/// Sets a big event queue up with its own mailbox of `kind`.
///
/// ```
/// use event_core::abi::sync::AtomicI32;
/// use event_core::abi::{CeqEvent, CeqOp, EventQueueBig, EvqFlags};
/// use event_core::recv::setup::{self, MboxKind};
/// use event_core::testing::ToyHost;
/// use event_core::VcoreId;
///
/// let host = ToyHost::new();
/// let (_, big) = host.alloc::<EventQueueBig>();
/// let (_, events) = host.alloc::<[CeqEvent; 16]>();
/// let (_, ring) = host.alloc::<[AtomicI32; 8]>();
/// let ceq = MboxKind::Ceq { op: CeqOp::Add, events, ring };
/// setup::init_big_evq(big, ceq, EvqFlags::INDIR, VcoreId::ZERO, &host).unwrap();
/// ```
pub fn init_big_evq<R: VcoreRuntime>(
    big: &EventQueueBig,
    kind: MboxKind<'_>,
    flags: EvqFlags,
    vcoreid: VcoreId,
    rt: &R,
) -> Result<(), SetupError> {
    init_mbox(&big.ev_imbox, kind, rt)?;
    init_evq(
        &big.evq,
        UserAddr::new((&big.ev_imbox as *const EventMbox).expose_provenance()),
        flags,
        vcoreid,
    )
}

/// Makes the queue call `f` (instead of draining its mailbox) when an
/// indirection for it is handled.
pub fn set_evq_handler(ev_q: &EventQueue, f: Option<EvqHandlerFn>) {
    // Exposed, so `handle_event_q` may turn the address back into the
    // function pointer it was.
    let addr = f.map_or(0, |f| (f as *const ()).expose_provenance());
    ev_q.ev_handler.store(addr, Ordering::Release);
}

impl<R: VcoreRuntime> Receiver<'_, R> {
    /// Sets both VCPD mailboxes of `vcoreid` up as `kind` (UCQs, typically).
    /// Call before the vcore first runs.
    pub fn init_vcpd_mboxes(
        &self,
        vcoreid: VcoreId,
        public: MboxKind<'_>,
        private: MboxKind<'_>,
    ) -> Result<(), SetupError> {
        let v = self.vcpd(vcoreid);
        init_mbox(&v.ev_mbox_public, public, self.rt)?;
        init_mbox(&v.ev_mbox_private, private, self.rt)
    }

    /// User address of a vcore's VCPD mailbox, for a slim queue that always
    /// delivers there.
    pub fn vcpd_mbox_addr(&self, vcoreid: VcoreId, private: bool) -> UserAddr<EventMbox> {
        UserAddr::new((self.vcpd(vcoreid).mbox(private) as *const EventMbox).expose_provenance())
    }

    /// Asks the kernel to send kernel events of `ev_type` to the queue at
    /// `ev_q` (its user address).
    ///
    /// ```
    /// use event_core::abi::{EV_PREEMPT_PENDING, EventQueue, EvqFlags, UserAddr};
    /// use event_core::recv::setup;
    /// use event_core::testing::ToyHost;
    /// use event_core::VcoreId;
    ///
    /// let host = ToyHost::new();
    /// let (q, queue) = host.alloc::<EventQueue>();
    /// setup::init_evq(queue, UserAddr::NULL, EvqFlags::SPAM_PUBLIC, VcoreId::ZERO).unwrap();
    /// let rx = host.receiver();
    /// rx.enable_kevent(EV_PREEMPT_PENDING, q).unwrap();
    /// assert_eq!(rx.kernel_evt(EV_PREEMPT_PENDING), q);
    /// assert_eq!(rx.disable_kevent(EV_PREEMPT_PENDING), Ok(q));
    /// ```
    pub fn enable_kevent(
        &self,
        ev_type: u16,
        ev_q: UserAddr<EventQueue>,
    ) -> Result<(), SetupError> {
        let slot = self
            .kernel_evts
            .get(usize::from(ev_type))
            .ok_or(SetupError::BadEventType(ev_type))?;
        // Release: the kernel that reads the pointer sees a set-up queue.
        slot.store(ev_q.get(), Ordering::Release);
        Ok(())
    }

    /// Stops kernel events of `ev_type`; returns the queue that had them.
    pub fn disable_kevent(&self, ev_type: u16) -> Result<UserAddr<EventQueue>, SetupError> {
        let slot = self
            .kernel_evts
            .get(usize::from(ev_type))
            .ok_or(SetupError::BadEventType(ev_type))?;
        Ok(UserAddr::new(slot.swap(0, Ordering::AcqRel)))
    }
}
