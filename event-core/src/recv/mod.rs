//! The receiving half: what a process's vcores run.
//!
//! A [`Receiver`] ties together the process's procdata, its
//! [`HandlerTable`] and a [`VcoreRuntime`]. With it a vcore can:
//! - [`handle_events`](Receiver::handle_events): clear its `notif_pending`,
//!   then drain its private and public VCPD mailboxes, dispatching each
//!   message to the handlers of its type;
//! - handle indirections (`EV_EVENT`, registered by default): clear the
//!   queue's `ev_alert_pending`, then drain the queue or call its handler;
//! - [`recover_public_mbox`](Receiver::recover_public_mbox): drain another
//!   (preempted) vcore's public mailbox;
//! - set mailboxes and queues up ([`setup`]) and yield without losing
//!   messages ([`yielding`]);
//! - take messages in batches from any mailbox
//!   ([`extract_batch`](Receiver::extract_batch)), and block a thread on
//!   several queues with a deadline ([`wait`]); service *watched* queues,
//!   whose bare `IPI` alerts would otherwise reach nobody
//!   ([`HandlerTable::watch`]).
//!
//! The process trusts its own shared memory, so this side follows the
//! addresses it finds there directly, as C code would. That trust is a
//! promise the process makes once, when it creates its [`Receiver`]
//! (an `unsafe` constructor: see its `# Safety`).

mod drain;
mod handlers;
pub mod setup;
pub mod wait;
mod watch;
pub mod yielding;

use core::fmt;

pub use handlers::{HANDLERS_PER_TYPE, Handler, HandlerFn, HandlerId, HandlerTable, RegisterError};
use log::warn;
use vcpd_abi::sync::{AtomicUsize, Ordering, fence};
use vcpd_abi::{EventMbox, EventMsg, EventQueue, MAX_NR_EVENT, MboxRef, ProcDataN, UserAddr, Vcpd};
pub use watch::{WATCHED_QUEUES, WatchError};

use crate::ids::VcoreId;

/// What the receive side needs from the process's runtime.
pub trait VcoreRuntime {
    /// Called in every iteration of a spin-wait on another vcore.
    fn relax(&self) {
        vcpd_abi::sync::spin_loop();
    }
    /// Maps a zeroed, page-aligned page (for UCQ set-up).
    fn alloc_page(&self) -> Option<usize>;
    /// Gives a page back (a UCQ returning a surplus page).
    fn free_page(&self, page: usize);
    /// The vcore the calling code runs on (Akaros's `vcore_id()`),
    /// recorded as the holder of a mailbox's consumer lock (`u_lock`) so
    /// that a waiter can tell whom it waits for. Default: 0.
    fn vcore_id(&self) -> u32 {
        0
    }
}

/// Adapts a [`VcoreRuntime`] to the mailbox crates' consumer traits.
struct Adapt<'a, R>(&'a R);

impl<R: VcoreRuntime> ucq::ConsumerHost for Adapt<'_, R> {
    fn relax(&self) {
        self.0.relax();
    }
    fn free_page(&self, page: usize) {
        self.0.free_page(page);
    }
    fn vcore_id(&self) -> u32 {
        self.0.vcore_id()
    }
}

impl<R: VcoreRuntime> ceq::ConsumerHost for Adapt<'_, R> {
    fn relax(&self) {
        self.0.relax();
    }
    fn vcore_id(&self) -> u32 {
        self.0.vcore_id()
    }
}

/// Messages a drain takes from a UCQ per claim (they are then dispatched
/// one by one; a vcore preempted meanwhile handles the rest when it runs).
pub const DRAIN_BATCH: usize = 16;

/// A queue's own handler, stored in `EventQueue::ev_handler`. Set it only
/// with [`setup::set_evq_handler`].
pub type EvqHandlerFn = extern "C" fn(ev_q: &EventQueue);

/// A process's view of event delivery.
pub struct Receiver<'a, R> {
    vcpds: &'a [Vcpd],
    kernel_evts: &'a [AtomicUsize; MAX_NR_EVENT],
    handlers: &'a HandlerTable<R>,
    rt: &'a R,
}

impl<R> fmt::Debug for Receiver<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("vcores", &self.vcpds.len())
            .finish_non_exhaustive()
    }
}

impl<'a, R: VcoreRuntime> Receiver<'a, R> {
    /// A receiver over the process's procdata, handler table and runtime.
    ///
    /// # Safety
    /// The receiver follows addresses it finds in the process's shared
    /// structures, as the process's own C code would. The caller promises
    /// that they are *the process's own memory* in this sense: every
    /// address reachable from `procdata` (the queues in `kernel_evts`, the
    /// queue named by an indirection in a VCPD mailbox, a queue's
    /// `ev_mbox`, `ev_handler` and `ev_udata`, a UCQ's pages, a CEQ's
    /// arrays) was stored by the set-up functions of [`setup`] and
    /// [`wait`] (or equivalent code), points at live memory of the type it
    /// is used as, mapped readable and writable, and stays so for as long
    /// as the receiver is used. A
    /// process that keeps its queues for its whole life and sets them up
    /// only through [`setup`] meets this.
    pub unsafe fn new<const V: usize>(
        procdata: &'a ProcDataN<V>,
        handlers: &'a HandlerTable<R>,
        rt: &'a R,
    ) -> Self {
        Self {
            vcpds: &procdata.vcpd,
            kernel_evts: &procdata.kernel_evts,
            handlers,
            rt,
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> &'a R {
        self.rt
    }

    /// The handler table.
    pub fn handlers(&self) -> &'a HandlerTable<R> {
        self.handlers
    }

    /// The vcore's VCPD.
    ///
    /// # Panics
    /// If `vcoreid` is not below the number of VCPDs (a bug in the caller:
    /// the process knows its own vcores).
    pub fn vcpd(&self, vcoreid: VcoreId) -> &'a Vcpd {
        &self.vcpds[vcoreid.index()]
    }

    /// Takes one message from any type of mailbox.
    pub fn extract_one(&self, mbox: &EventMbox) -> Option<EventMsg> {
        match mbox.body() {
            // SAFETY: the receiver's maker promised (`Receiver::new`) that this
            // mailbox and the pages it names are the process's own memory.
            Ok(MboxRef::Ucq(u)) => unsafe { ucq::Consumer::new(u) }.try_recv(&Adapt(self.rt)),
            // SAFETY: as above (and the arrays the CEQ names).
            Ok(MboxRef::Ceq(c)) => unsafe { ceq::Consumer::new(c) }.try_recv(&Adapt(self.rt)),
            Ok(MboxRef::Bitmap(b)) => evbitmap::try_recv(b),
            Err(_) => None,
        }
    }

    /// Whether a mailbox holds nothing now (an unset-up mailbox is empty).
    pub fn mbox_is_empty(&self, mbox: &EventMbox) -> bool {
        match mbox.body() {
            Ok(MboxRef::Ucq(u)) => ucq::is_empty(u),
            Ok(MboxRef::Ceq(c)) => ceq::is_empty(c),
            Ok(MboxRef::Bitmap(b)) => evbitmap::is_empty(b),
            Err(_) => true,
        }
    }

    /// Calls every handler registered for the message's type.
    pub fn dispatch(&self, vcoreid: VcoreId, msg: &EventMsg) {
        for h in self.handlers.handlers(msg.ev_type) {
            (h.func)(self, vcoreid, msg, h.data);
        }
    }

    /// Drains `mbox`, dispatching every message; returns how many. UCQs are
    /// drained [`DRAIN_BATCH`] messages per claim.
    pub fn handle_mbox(&self, vcoreid: VcoreId, mbox: &EventMbox) -> usize {
        let mut n = 0;
        if let Ok(MboxRef::Ucq(u)) = mbox.body() {
            let mut batch = [EventMsg::default(); DRAIN_BATCH];
            loop {
                // SAFETY: the receiver's maker promised (`Receiver::new`) that this
                // mailbox and the pages it names are the process's own memory.
                let got =
                    unsafe { ucq::Consumer::new(u) }.try_recv_batch(&Adapt(self.rt), &mut batch);
                if got == 0 {
                    return n;
                }
                for msg in &batch[..got] {
                    self.dispatch(vcoreid, msg);
                }
                n += got;
            }
        }
        while let Some(msg) = self.extract_one(mbox) {
            self.dispatch(vcoreid, &msg);
            n += 1;
        }
        n
    }

    /// The vcore's event entry: clear `notif_pending`, then drain the
    /// private and the public VCPD mailbox, then handle the watched queues
    /// that hold messages ([`HandlerTable::watch`]). Returns messages
    /// handled.
    ///
    /// ```
    /// use event_core::abi::{EventMsg, EvqFlags};
    /// use event_core::testing::ToyHost;
    /// use event_core::{VcoreId, post_vcore_event};
    ///
    /// let host = ToyHost::new();
    /// let v = VcoreId::new(1).unwrap();
    /// post_vcore_event(&host, &EventMsg::new(3), v, EvqFlags::empty()).unwrap();
    /// post_vcore_event(&host, &EventMsg::new(3), v, EvqFlags::VCORE_PRIVATE).unwrap();
    /// let rx = host.receiver();
    /// rx.handlers().register(3, |_, _, _, _| {}, 0).unwrap();
    /// assert_eq!(rx.handle_events(v), 2); // private, then public
    /// assert_eq!(rx.handle_events(v), 0);
    /// ```
    pub fn handle_events(&self, vcoreid: VcoreId) -> usize {
        let vcpd = self.vcpd(vcoreid);
        // A swap, not a store, and no fence: every write of this flag (the
        // kernel's sets, this clear) is a read-modify-write, so the writes
        // are totally ordered. If our clear comes after a sender's set, it
        // reads that set and synchronizes with it: the drain below sees the
        // message. If it comes before, the flag stays set and we (or the
        // kernel's yield) come back. Either way nothing is missed, which the
        // loom models check (turning this swap into a store fails them).
        vcpd.notif_pending.swap(false, Ordering::AcqRel);
        self.handle_mbox(vcoreid, &vcpd.ev_mbox_private)
            + self.handle_mbox(vcoreid, &vcpd.ev_mbox_public)
            + self.handle_watched(vcoreid)
    }

    /// Drains another vcore's public mailbox (preemption recovery: its
    /// owner is not running, and spammed messages must not wait for it).
    /// Returns messages handled.
    ///
    /// ```
    /// use event_core::abi::{EventMsg, EvqFlags};
    /// use event_core::testing::ToyHost;
    /// use event_core::{VcoreId, post_vcore_event};
    ///
    /// let host = ToyHost::new();
    /// let (me, away) = (VcoreId::ZERO, VcoreId::new(3).unwrap());
    /// post_vcore_event(&host, &EventMsg::new(8), away, EvqFlags::empty()).unwrap();
    /// // Vcore 3 is preempted; vcore 0 handles its public mailbox.
    /// assert_eq!(host.receiver().recover_public_mbox(me, away), 1);
    /// ```
    pub fn recover_public_mbox(&self, my_vcoreid: VcoreId, other: VcoreId) -> usize {
        self.handle_mbox(my_vcoreid, &self.vcpd(other).ev_mbox_public)
    }

    /// Drains an event queue's mailbox (or calls its handler): what an
    /// indirection asks for, without the alert bookkeeping.
    pub fn handle_event_q(&self, vcoreid: VcoreId, ev_q: &EventQueue) -> usize {
        let handler = ev_q.ev_handler.load(Ordering::Acquire);
        if handler != 0 {
            let ptr = core::ptr::with_exposed_provenance::<()>(handler);
            // SAFETY: the receiver's maker promised (`Receiver::new`) that
            // `ev_handler` was stored by `setup::set_evq_handler` (the kernel
            // never writes it): the exposed address of a real
            // `EvqHandlerFn`. Function and data pointers have the same size
            // on every target this crate supports.
            let f: EvqHandlerFn = unsafe { core::mem::transmute::<*const (), EvqHandlerFn>(ptr) };
            f(ev_q);
            return 0;
        }
        match ev_q.ev_mbox.load(Ordering::Acquire) {
            0 => 0,
            mbox => self.handle_mbox(vcoreid, self.own::<EventMbox>(mbox)),
        }
    }

    /// The kernel-event queue registered for `ev_type` (null if none).
    pub fn kernel_evt(&self, ev_type: u16) -> UserAddr<EventQueue> {
        UserAddr::new(
            self.kernel_evts
                .get(usize::from(ev_type))
                .map_or(0, |s| s.load(Ordering::Acquire)),
        )
    }
}

/// The built-in `EV_EVENT` handler: the message names an event queue that
/// has news. Clear its `ev_alert_pending` first, so the kernel may send a
/// new indirection for anything that arrives while we drain.
///
/// The queue's address travels in `ev_arg3`, so indirections need VCPD
/// mailboxes that carry arguments (UCQ, or a CEQ for a single queue); a
/// bitmap records only the type, and an `EV_EVENT` from one is ignored
/// with a warning.
pub(crate) fn handle_indir<R: VcoreRuntime>(
    rx: &Receiver<'_, R>,
    vcoreid: VcoreId,
    msg: &EventMsg,
    _: usize,
) {
    let addr = msg.ev_arg3;
    if addr == 0 || addr % core::mem::align_of::<EventQueue>() != 0 {
        warn!("event: indirection with bad queue address {addr:#x} ignored");
        return;
    }
    let ev_q = rx.own::<EventQueue>(addr);
    ev_q.ev_alert_pending.store(false, Ordering::Relaxed);
    // Store-load: clear, then look. The kernel posts, fences, then reads the
    // flag: either it sees our clear (and alerts again) or we see its post.
    fence(Ordering::SeqCst);
    rx.handle_event_q(vcoreid, ev_q);
}

impl<'a, R> Receiver<'a, R> {
    /// The `T` at `addr`, an address found in the process's own shared
    /// structures.
    fn own<T: vcpd_abi::SharedMem>(&self, addr: usize) -> &'a T {
        // SAFETY: whoever made this receiver promised (`Receiver::new`) that
        // every address reachable from procdata is live process memory of
        // the type it is used as for as long as the receiver is used;
        // `T: SharedMem` stays valid under concurrent writes.
        unsafe { &*core::ptr::with_exposed_provenance::<T>(addr) }
    }
}
