//! Loom model of the core race behind guarantee 4: a send that spams a
//! vcore runs concurrently with that vcore yielding, with another vcore
//! yielding (the process may go WAITING), and with a bulk preemption. On
//! every interleaving, the spammed message must end up handled, or in the
//! public mailbox of a vcore that will check it: an online one, a
//! bulk-preempted one (it will be restarted), or the inactive head with
//! `CAN_RCV_MSG` set (the vcore a wakeup starts).
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p
//! event-core --test loom --release`.
//!
//! The model kernel keeps the host protocol of `event_core::host`: unlocked
//! list heads are atomics written under the process lock, and yield is
//! "refuse if notif_pending; unlink (and set WAITING if last); SeqCst fence;
//! re-check; undo, or finish at the inactive head".

#![cfg(loom)]

#[path = "common/loom_threads.rs"]
mod loom_threads;

use loom_threads::{model, spawn, translate_in};
use std::ptr::NonNull;

use event_core::recv::setup::{self, MboxKind};
use event_core::recv::{HandlerTable, Receiver, VcoreRuntime};
use event_core::testing::thread_cpu_index;
use event_core::vcores::{ProcKind, ProcState, VcoreList, VcoreLists, VcoreSet};
use event_core::{PcoreId, ProcDataRef, ProcEvents, ProcOps, VcoreId};
use loom::sync::Arc;
use loom::sync::atomic::AtomicUsize;
use loom::thread;
use vcpd_abi::sync::AtomicI32;
use vcpd_abi::sync::Ordering;
use vcpd_abi::{
    CeqEvent, CeqOp, EventMsg, EventQueue, EventQueueBig, EvqFlags, ProcDataN, UcqPage, UserAddr,
    UserMemory, VcpdFlags,
};

const V: usize = 2;
const MSG_TYPE: u16 = 9;

fn vc(v: u32) -> VcoreId {
    VcoreId::new(v).unwrap()
}

/// Vcore `v` runs on pcore `v` in the models.
fn pc(v: VcoreId) -> PcoreId {
    PcoreId::new(v.get())
}

struct Proc {
    procdata: Box<ProcDataN<V>>,
    ev_q: Box<EventQueue>,
    /// A queue with its own bitmap mailbox and INDIR, for guarantee 5.
    indir_q: Box<EventQueueBig>,
    /// Bit `t` set: a payload of type `t` was handled.
    payloads: AtomicUsize,
    /// Arrays for a CEQ VCPD mailbox (indirections need a mailbox that
    /// carries `ev_arg3`, the queue's address; a bitmap does not).
    ceq_events: Box<[CeqEvent; 16]>,
    ceq_ring: Box<[AtomicI32; 4]>,
    /// Pages for a UCQ, only in the models that need one (they are big
    /// under loom).
    pages: Vec<Box<UcqPage>>,
    /// The library's vcore lifecycle: the code under test.
    events: ProcEvents<VcoreSet<V>>,
    /// `make_runnable` calls.
    wakeups: AtomicUsize,
    handled: AtomicUsize,
}

impl Proc {
    /// An MCP with both vcores online, running and receptive, bitmap VCPD
    /// mailboxes, and a SPAM_PUBLIC queue preferring vcore 0.
    fn new(extra: EvqFlags) -> Arc<Self> {
        Self::with_pages(extra, 0)
    }

    fn with_pages(extra: EvqFlags, pages: usize) -> Arc<Self> {
        let p = Self {
            procdata: Box::new(ProcDataN::new()),
            ev_q: Box::new(EventQueue::default()),
            indir_q: Box::new(EventQueueBig::default()),
            payloads: AtomicUsize::new(0),
            ceq_events: Box::new(std::array::from_fn(|_| CeqEvent::default())),
            ceq_ring: Box::new(std::array::from_fn(|_| AtomicI32::new(0))),
            pages: (0..pages).map(|_| Box::new(UcqPage::new())).collect(),
            events: ProcEvents::new(VcoreSet::new(ProcKind::Mcp, V as u32, thread_cpu_index)),
            wakeups: AtomicUsize::new(0),
            handled: AtomicUsize::new(0),
        };
        for v in 0..V {
            let vcpd = &p.procdata.vcpd[v];
            setup::init_mbox(&vcpd.ev_mbox_public, MboxKind::Bitmap, &NoPages).unwrap();
            setup::init_mbox(&vcpd.ev_mbox_private, MboxKind::Bitmap, &NoPages).unwrap();
            vcpd.set_flags(VcpdFlags::CAN_RCV_MSG, Ordering::Relaxed);
            // The inactive head is vcore v: it goes online on pcore v.
            let _ = p.set().grant(pc(vc(v as u32))).unwrap();
        }
        setup::init_evq(
            &p.ev_q,
            UserAddr::NULL,
            EvqFlags::SPAM_PUBLIC | extra,
            vc(0),
        )
        .unwrap();
        if p.pages.is_empty() {
            setup::init_big_evq(
                &p.indir_q,
                MboxKind::Bitmap,
                EvqFlags::INDIR,
                vc(0),
                &NoPages,
            )
            .unwrap();
        } else {
            let rt = Pages(std::sync::Mutex::new(
                p.pages.iter().map(|pg| Self::addr(&**pg)).collect(),
            ));
            setup::init_big_evq(&p.indir_q, MboxKind::Ucq, EvqFlags::INDIR, vc(0), &rt).unwrap();
        }
        Arc::new(p)
    }

    fn set(&self) -> &VcoreSet<V> {
        self.events.vcores()
    }

    fn addr<T>(r: &T) -> usize {
        (r as *const T).expose_provenance()
    }

    fn receiver<'a>(&'a self, handlers: &'a HandlerTable<NoPages>) -> Receiver<'a, NoPages> {
        // SAFETY: the model's queues are set up by `setup` in boxes the
        // `Proc` owns for the whole model run.
        unsafe { Receiver::new(&*self.procdata, handlers, &NoPages) }
    }

    /// The kernel's yield: `VcoreSet::yield_vcore`. `true` if yielded.
    fn sys_yield(&self, v: u32) -> bool {
        self.set().yield_vcore(&self.procdata.vcpd, vc(v)).is_ok()
    }

    /// The kernel bulk-preempts vcore `v` (it will be restarted).
    fn preempt(&self, v: u32) {
        let _ = self.set().preempt(&self.procdata.vcpd, vc(v));
    }

    /// The kernel restarts bulk-preempted vcore `v` on its core.
    fn restart(&self, v: u32) {
        let _ = self.set().restart(&self.procdata.vcpd, vc(v), pc(vc(v)));
    }

    /// What a vcore runs to yield: drain with CAN_RCV_MSG off, ask the
    /// kernel, and if refused come back online (which drains again).
    fn vcore_yield(&self, v: u32) {
        let handlers = HandlerTable::new();
        handlers
            .register(MSG_TYPE, count, Self::addr(&self.handled))
            .unwrap();
        handlers
            .register(vcpd_abi::EV_EVENT, count, Self::addr(&self.handled))
            .unwrap();
        let rx = self.receiver(&handlers);
        rx.prepare_to_yield(vc(v));
        if !self.sys_yield(v) {
            rx.vcore_online(vc(v));
        }
    }

    fn send(&self) {
        self.send_to(&self.ev_q, MSG_TYPE);
    }

    fn send_to(&self, ev_q: &EventQueue, ty: u16) {
        event_core::send_event(
            self,
            UserAddr::new(Self::addr(ev_q)),
            &EventMsg::new(ty),
            vc(0),
        )
        .unwrap();
    }

    /// Guarantee 4, checked once every thread is done.
    fn assert_delivered(&self) {
        self.assert_delivered_type(MSG_TYPE);
    }

    /// Like [`assert_delivered`] for messages of type `ty`: the message was
    /// handled, or sits in the public mailbox of a vcore that will check it
    /// (online; bulk-preempted, so it will be restarted; or the inactive
    /// head with CAN_RCV_MSG, the vcore a wakeup starts). With `must_run`,
    /// only a vcore that will run counts: online, or bulk-preempted (it ran
    /// when the message was posted, and it is restarted), never a vcore
    /// that yielded.
    fn assert_delivered_type(&self, ty: u16) {
        self.check_delivered(ty, false);
    }

    fn check_delivered(&self, ty: u16, must_run: bool) {
        let set = self.set();
        let bulk = set.members(VcoreList::BulkPreempted).unwrap();
        let inactive_head = set.head(VcoreList::Inactive);
        let mut safe = self.handled.load(Ordering::Relaxed);
        let mut where_ = vec![];
        for v in (0..V as u32).map(vc) {
            let vcpd = &self.procdata.vcpd[v.index()];
            let mut n = 0;
            while evbitmap::try_recv(vcpd.ev_mbox_public.as_evbitmap()).is_some() {
                n += 1;
            }
            let online = set.is_mapped(v);
            let will_check = online
                || bulk.contains(&v)
                || (!must_run
                    && inactive_head == Some(v)
                    && vcpd
                        .flags(Ordering::Relaxed)
                        .contains(VcpdFlags::CAN_RCV_MSG));
            if n > 0 {
                where_.push((v, will_check));
                if will_check {
                    safe += n;
                }
            }
        }
        assert!(
            safe >= 1,
            "message of type {ty} lost: handled {}, copies {:?}, {:?}, bulk {:?}\n{}",
            self.handled.load(Ordering::Relaxed),
            where_,
            set,
            bulk,
            self.events.stats()
        );
        // A copy that sits only with the inactive head is owed a wakeup:
        // with WAKEUP, the process must have been woken.
        let only_inactive = self.handled.load(Ordering::Relaxed) == 0
            && where_
                .iter()
                .all(|&(v, ok)| !ok || (inactive_head == Some(v) && !set.is_mapped(v)));
        if only_inactive && self.ev_q.flags().contains(EvqFlags::WAKEUP) {
            assert!(
                set.state() == ProcState::Waiting || self.wakeups.load(Ordering::Relaxed) > 0,
                "message parked on an inactive vcore of a process nobody will wake"
            );
        }
    }
}

fn payload(_: &Receiver<'_, NoPages>, _: VcoreId, msg: &EventMsg, data: usize) {
    // SAFETY: `data` is the address of `Proc::payloads`, alive for the run.
    let seen = unsafe { &*std::ptr::with_exposed_provenance::<AtomicUsize>(data) };
    seen.fetch_or(1 << msg.ev_type, Ordering::Relaxed);
}

fn count(_: &Receiver<'_, NoPages>, _: VcoreId, _: &EventMsg, data: usize) {
    // SAFETY: `data` is the address of `Proc::handled`, alive for the model run.
    let handled = unsafe { &*std::ptr::with_exposed_provenance::<AtomicUsize>(data) };
    handled.fetch_add(1, Ordering::Relaxed);
}

/// Vcore runtime of the model: bitmaps need no pages; spin-waits yield.
struct NoPages;

impl VcoreRuntime for NoPages {
    fn relax(&self) {
        thread::yield_now();
    }
    fn alloc_page(&self) -> Option<usize> {
        None
    }
    fn free_page(&self, _: usize) {}
}

/// Hands out a fixed set of pre-built pages (UCQ set-up in the model).
struct Pages(std::sync::Mutex<Vec<usize>>);

impl VcoreRuntime for Pages {
    fn alloc_page(&self) -> Option<usize> {
        self.0.lock().unwrap().pop()
    }
    fn free_page(&self, _: usize) {}
}

// SAFETY: accepts only ranges inside procdata, the queues and the CEQ and
// UCQ storage, all owned by the `Proc` (alive as long as `&self`), with
// exposed provenance.
unsafe impl UserMemory for Proc {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        let pages = self
            .pages
            .iter()
            .map(|pg| (Self::addr(&**pg), size_of::<UcqPage>()));
        let regions = [
            (Self::addr(&*self.procdata), size_of::<ProcDataN<V>>()),
            (Self::addr(&*self.ev_q), size_of::<EventQueue>()),
            (Self::addr(&*self.indir_q), size_of::<EventQueueBig>()),
            (Self::addr(&*self.ceq_events), size_of::<[CeqEvent; 16]>()),
            (Self::addr(&*self.ceq_ring), size_of::<[AtomicI32; 4]>()),
        ];
        translate_in(regions.into_iter().chain(pages), addr, len)
    }
}

impl ProcOps for Proc {
    type Vcores = VcoreSet<V>;

    fn events(&self) -> &ProcEvents<VcoreSet<V>> {
        &self.events
    }
    fn procdata(&self) -> ProcDataRef<'_> {
        (&*self.procdata).into()
    }
    fn alloc_user_page(&self) -> Option<usize> {
        None
    }
    fn ipi(&self, _: PcoreId) {}
    fn make_runnable(&self) {
        self.wakeups.fetch_add(1, Ordering::Relaxed);
        // The kernel's scheduler gives the woken process a core: the set
        // starts the inactive head there.
        if let Some(v) = self.set().head(VcoreList::Inactive) {
            let _ = self.set().grant(pc(v));
        }
    }
}

/// The chosen vcore yields while the kernel spams it.
#[test]
fn spam_races_the_chosen_vcore_yielding() {
    model(|| {
        let p = Proc::new(EvqFlags::empty());
        let vc0 = {
            let p = p.clone();
            spawn(move || p.vcore_yield(0))
        };
        p.send();
        vc0.join().unwrap();
        p.assert_delivered();
    });
}

/// Both vcores yield (the process may become WAITING) while the kernel
/// spams with WAKEUP.
#[test]
fn spam_races_every_vcore_yielding() {
    model(|| {
        let p = Proc::new(EvqFlags::WAKEUP);
        let vcores: Vec<_> = (0..V as u32)
            .map(|v| {
                let p = p.clone();
                spawn(move || p.vcore_yield(v))
            })
            .collect();
        p.send();
        for t in vcores {
            t.join().unwrap();
        }
        p.assert_delivered();
    });
}

/// The chosen vcore yields while the kernel bulk-preempts the other one.
#[test]
fn spam_races_a_yield_and_a_preemption() {
    model(|| {
        let p = Proc::new(EvqFlags::empty());
        let vc0 = {
            let p = p.clone();
            spawn(move || p.vcore_yield(0))
        };
        let kernel = {
            let p = p.clone();
            spawn(move || p.preempt(1))
        };
        p.send();
        vc0.join().unwrap();
        kernel.join().unwrap();
        p.assert_delivered();
    });
}

/// The kernel bulk-preempts the chosen vcore and restarts it while the
/// other vcore yields and the kernel spams: a copy left with the
/// preempted vcore must be one it checks when it comes back.
#[test]
fn spam_races_a_preemption_restart_and_a_yield() {
    model(|| {
        let p = Proc::new(EvqFlags::empty());
        let kernel = {
            let p = p.clone();
            spawn(move || {
                p.preempt(0);
                p.restart(0);
            })
        };
        let vc1 = {
            let p = p.clone();
            spawn(move || p.vcore_yield(1))
        };
        p.send();
        kernel.join().unwrap();
        vc1.join().unwrap();
        p.assert_delivered();
        // Restart makes the vcore check its mailboxes first (rule 3).
        assert!(
            p.procdata.vcpd[0].notif_pending.load(Ordering::Relaxed),
            "a restarted vcore must look at its mailboxes"
        );
    });
}

/// MUST_RUN: the chosen vcore yields while a MUST_RUN spam is under way
/// and the kernel preempts the other one. The message must reach a vcore
/// that runs: one online, or one that was running when it was posted and
/// was then bulk-preempted (it is restarted); never a vcore that yielded.
#[test]
fn must_run_races_a_yield_and_a_preemption() {
    model(|| {
        let p = Proc::new(EvqFlags::VCORE_MUST_RUN);
        let vc0 = {
            let p = p.clone();
            spawn(move || p.vcore_yield(0))
        };
        let kernel = {
            let p = p.clone();
            spawn(move || p.preempt(1))
        };
        p.send();
        vc0.join().unwrap();
        kernel.join().unwrap();
        p.check_delivered(MSG_TYPE, true);
    });
}

/// The last online vcore yields (the process goes WAITING) while the kernel
/// sends an indirection without SPAM_INDIR, with WAKEUP, to that very
/// vcore: the INDIR goes straight to its public mailbox, no lock taken. The
/// yield and the WAKEUP check must not miss each other, or the process
/// sleeps with the alert parked on a vcore nobody starts.
#[test]
fn last_yield_races_a_wakeup_send() {
    model(|| {
        let p = Proc::new(EvqFlags::empty());
        // Vcore 1 already yielded: vcore 0 is the last one online.
        p.procdata.vcpd[1].clear_flags(VcpdFlags::CAN_RCV_MSG, Ordering::Relaxed);
        assert!(p.sys_yield(1));
        p.indir_q.evq.set_flags(EvqFlags::INDIR | EvqFlags::WAKEUP);
        let vc0 = {
            let p = p.clone();
            spawn(move || p.vcore_yield(0))
        };
        p.send_to(&p.indir_q.evq, 5);
        vc0.join().unwrap();
        p.assert_delivered_type(vcpd_abi::EV_EVENT);
    });
}

/// Guarantee 5: two sends to a throttled INDIR queue race a vcore that
/// handles the indirection (clearing `ev_alert_pending`, then draining).
/// Whatever the interleaving, once both stop, every payload was handled or
/// an indirection is waiting behind a set `notif_pending`: no alert lost.
#[test]
fn throttled_indirections_never_lose_an_alert() {
    model(|| {
        // The queue's payloads go to a UCQ: its producer reads nothing its
        // consumers write, so only the fences order the alert handshake.
        let p = Proc::with_pages(EvqFlags::empty(), 2);
        let kind = MboxKind::Ceq {
            op: CeqOp::Or,
            events: &*p.ceq_events,
            ring: &*p.ceq_ring,
        };
        setup::init_mbox(&p.procdata.vcpd[0].ev_mbox_public, kind, &NoPages).unwrap();
        let vcore = {
            let p = p.clone();
            spawn(move || {
                let handlers = HandlerTable::new();
                for t in [3, 4] {
                    handlers
                        .register(t, payload, Proc::addr(&p.payloads))
                        .unwrap();
                }
                let rx = p.receiver(&handlers);
                for _ in 0..2 {
                    if p.procdata.vcpd[0].notif_pending.load(Ordering::Acquire) {
                        rx.handle_events(vc(0));
                    } else {
                        thread::yield_now();
                    }
                }
            })
        };
        for t in [3u16, 4] {
            p.send_to(&p.indir_q.evq, t);
        }
        vcore.join().unwrap();
        // The vcore comes back only if notified (notif_pending).
        let handlers = HandlerTable::new();
        for t in [3, 4] {
            handlers
                .register(t, payload, Proc::addr(&p.payloads))
                .unwrap();
        }
        if p.procdata.vcpd[0].notif_pending.load(Ordering::Acquire) {
            p.receiver(&handlers).handle_events(vc(0));
        }
        assert_eq!(
            p.payloads.load(Ordering::Relaxed),
            1 << 3 | 1 << 4,
            "a payload is stranded without an alert"
        );
    });
}
