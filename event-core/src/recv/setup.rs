//! Setting mailboxes and event queues up, and choosing which kernel events
//! to receive. All of this runs in the process, before (or while) the
//! kernel sends.

use core::fmt;

use vcpd_abi::sync::{AtomicI32, Ordering};
use vcpd_abi::{
    CeqEvent, CeqOp, EV_MBOX_BITMAP, EV_MBOX_CEQ, EV_MBOX_UCQ, EventMbox, EventQueue,
    EventQueueBig, EvqFlags,
};

use super::{EvqHandlerFn, Receiver, VcoreRuntime};

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
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfPages => f.write_str("no page for a UCQ"),
            Self::Ucq(e) => write!(f, "{e}"),
            Self::Ceq(e) => write!(f, "{e}"),
            Self::BadEventType(t) => write!(f, "event type {t} out of range"),
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

/// Sets a slim event queue up to deliver into the mailbox at `mbox_addr`
/// (0: the chosen vcore's VCPD mailbox, public or private per `flags`).
pub fn init_evq(ev_q: &EventQueue, mbox_addr: usize, flags: EvqFlags, vcoreid: u32) {
    ev_q.ev_mbox.store(mbox_addr, Ordering::Relaxed);
    ev_q.ev_vcore.store(vcoreid, Ordering::Relaxed);
    ev_q.ev_alert_pending.store(false, Ordering::Relaxed);
    ev_q.ev_handler.store(0, Ordering::Relaxed);
    ev_q.ev_udata.store(0, Ordering::Relaxed);
    // Release: the kernel reads the flags first; everything above is set.
    ev_q.ev_flags.store(flags.to_raw(), Ordering::Release);
}

/// Sets a big event queue up with its own mailbox of `kind`.
pub fn init_big_evq<R: VcoreRuntime>(
    big: &EventQueueBig,
    kind: MboxKind<'_>,
    flags: EvqFlags,
    vcoreid: u32,
    rt: &R,
) -> Result<(), SetupError> {
    init_mbox(&big.ev_imbox, kind, rt)?;
    init_evq(
        &big.evq,
        (&big.ev_imbox as *const EventMbox).expose_provenance(),
        flags,
        vcoreid,
    );
    Ok(())
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
        vcoreid: u32,
        public: MboxKind<'_>,
        private: MboxKind<'_>,
    ) -> Result<(), SetupError> {
        let v = self.vcpd(vcoreid);
        init_mbox(&v.ev_mbox_public, public, self.rt)?;
        init_mbox(&v.ev_mbox_private, private, self.rt)
    }

    /// User address of a vcore's VCPD mailbox, for a slim queue that always
    /// delivers there.
    pub fn vcpd_mbox_addr(&self, vcoreid: u32, private: bool) -> usize {
        (self.vcpd(vcoreid).mbox(private) as *const EventMbox).expose_provenance()
    }

    /// Asks the kernel to send kernel events of `ev_type` to the queue at
    /// `ev_q` (its user address).
    pub fn enable_kevent(&self, ev_type: u16, ev_q: usize) -> Result<(), SetupError> {
        let slot = self
            .kernel_evts
            .get(usize::from(ev_type))
            .ok_or(SetupError::BadEventType(ev_type))?;
        // Release: the kernel that reads the pointer sees a set-up queue.
        slot.store(ev_q, Ordering::Release);
        Ok(())
    }

    /// Stops kernel events of `ev_type`; returns the queue that had them.
    pub fn disable_kevent(&self, ev_type: u16) -> Result<usize, SetupError> {
        let slot = self
            .kernel_evts
            .get(usize::from(ev_type))
            .ok_or(SetupError::BadEventType(ev_type))?;
        Ok(slot.swap(0, Ordering::AcqRel))
    }
}
