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

use std::ptr::NonNull;

use event_core::recv::setup::{self, MboxKind};
use event_core::recv::{HandlerTable, Receiver, VcoreRuntime};
use event_core::{EventStats, ProcOps};
use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
use loom::sync::{Arc, Mutex};
use loom::thread;
use ucq::{UcqLocks, UserPageAlloc};
use vcpd_abi::sync::AtomicI32;
use vcpd_abi::sync::{Ordering, fence};
use vcpd_abi::{
    CeqEvent, CeqOp, EventMsg, EventQueue, EventQueueBig, EvqFlags, ProcDataN, UcqPage, UserMemory,
    VcpdFlags,
};

const V: usize = 2;
const NONE: u32 = u32::MAX;
const MSG_TYPE: u16 = 9;

#[derive(Default)]
struct Lists {
    online: Vec<u32>,
    bulk: Vec<u32>,
    inactive: Vec<u32>,
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
    lock: Mutex<Lists>,
    heads: [AtomicU32; 3],
    mapped: [AtomicBool; V],
    waiting: AtomicBool,
    wakeups: AtomicUsize,
    handled: AtomicUsize,
    stats: EventStats,
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
            lock: Mutex::new(Lists {
                online: vec![0, 1],
                ..Lists::default()
            }),
            heads: std::array::from_fn(|_| AtomicU32::new(NONE)),
            mapped: std::array::from_fn(|_| AtomicBool::new(true)),
            waiting: AtomicBool::new(false),
            wakeups: AtomicUsize::new(0),
            handled: AtomicUsize::new(0),
            stats: EventStats::new(),
        };
        for v in 0..V {
            let vcpd = &p.procdata.vcpd[v];
            setup::init_mbox(&vcpd.ev_mbox_public, MboxKind::Bitmap, &NoPages).unwrap();
            setup::init_mbox(&vcpd.ev_mbox_private, MboxKind::Bitmap, &NoPages).unwrap();
            vcpd.set_flags(VcpdFlags::CAN_RCV_MSG, Ordering::Relaxed);
        }
        setup::init_evq(&p.ev_q, 0, EvqFlags::SPAM_PUBLIC | extra, 0);
        if p.pages.is_empty() {
            setup::init_big_evq(&p.indir_q, MboxKind::Bitmap, EvqFlags::INDIR, 0, &NoPages)
                .unwrap();
        } else {
            let rt = Pages(std::sync::Mutex::new(
                p.pages.iter().map(|pg| Self::addr(&**pg)).collect(),
            ));
            setup::init_big_evq(&p.indir_q, MboxKind::Ucq, EvqFlags::INDIR, 0, &rt).unwrap();
        }
        p.publish_heads(&p.lock.lock().unwrap());
        Arc::new(p)
    }

    fn publish_heads(&self, l: &Lists) {
        for (h, list) in self.heads.iter().zip([&l.online, &l.bulk, &l.inactive]) {
            h.store(list.first().copied().unwrap_or(NONE), Ordering::Release);
        }
    }

    fn head(&self, i: usize) -> Option<u32> {
        Some(self.heads[i].load(Ordering::Acquire)).filter(|&h| h != NONE)
    }

    fn addr<T>(r: &T) -> usize {
        (r as *const T).expose_provenance()
    }

    /// The kernel's yield, rule 2 of the host protocol. `true` if yielded.
    fn sys_yield(&self, v: u32) -> bool {
        let vcpd = &self.procdata.vcpd[v as usize];
        let mut l = self.lock.lock().unwrap();
        if vcpd.notif_pending.load(Ordering::Acquire) {
            return false;
        }
        l.online.retain(|&x| x != v);
        let last = l.online.is_empty() && l.bulk.is_empty();
        if last {
            self.waiting.store(true, Ordering::Release);
        }
        self.publish_heads(&l);
        // Unlinked (and WAITING if last), then re-check: pairs with the
        // sender's "post, set notif_pending, fence, is it still the head /
        // is the process WAITING?".
        fence(Ordering::SeqCst);
        if vcpd.notif_pending.load(Ordering::Acquire) {
            l.online.push(v);
            self.waiting.store(false, Ordering::Release);
            self.publish_heads(&l);
            return false;
        }
        self.mapped[v as usize].store(false, Ordering::Release);
        l.inactive.insert(0, v);
        self.publish_heads(&l);
        true
    }

    /// The kernel bulk-preempts vcore `v` (it will be restarted).
    fn preempt(&self, v: u32) {
        let mut l = self.lock.lock().unwrap();
        if let Some(i) = l.online.iter().position(|&x| x == v) {
            l.online.remove(i);
            l.bulk.push(v);
            self.procdata.vcpd[v as usize].set_flags(VcpdFlags::PREEMPTED, Ordering::SeqCst);
            self.mapped[v as usize].store(false, Ordering::Release);
            self.publish_heads(&l);
        }
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
        let rx = Receiver::new(&*self.procdata, &handlers, &NoPages);
        rx.prepare_to_yield(v);
        if !self.sys_yield(v) {
            rx.vcore_online(v);
        }
    }

    fn send(&self) {
        event_core::send_event(self, Self::addr(&*self.ev_q), &EventMsg::new(MSG_TYPE), 0).unwrap();
    }

    /// Guarantee 4, checked once every thread is done.
    fn assert_delivered(&self) {
        self.assert_delivered_type(MSG_TYPE);
    }

    /// Like [`assert_delivered`] for messages of type `ty`.
    fn assert_delivered_type(&self, ty: u16) {
        let l = self.lock.lock().unwrap();
        let inactive_head = l.inactive.first().copied();
        let mut safe = self.handled.load(Ordering::Relaxed);
        let mut where_ = vec![];
        for v in 0..V as u32 {
            let vcpd = &self.procdata.vcpd[v as usize];
            let mut n = 0;
            while evbitmap::try_recv(vcpd.ev_mbox_public.as_evbitmap()).is_some() {
                n += 1;
            }
            let will_check = l.online.contains(&v)
                || l.bulk.contains(&v)
                || (inactive_head == Some(v)
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
            "message of type {ty} lost: handled {}, copies {:?}, online {:?} bulk {:?} inactive {:?}\n{}",
            self.handled.load(Ordering::Relaxed),
            where_,
            l.online,
            l.bulk,
            l.inactive,
            self.stats
        );
        // A copy that sits only with the inactive head is owed a wakeup:
        // with WAKEUP, the process must have been woken.
        let only_inactive = self.handled.load(Ordering::Relaxed) == 0
            && where_
                .iter()
                .all(|&(v, ok)| !ok || (inactive_head == Some(v) && !l.online.contains(&v)));
        if only_inactive && self.ev_q.flags().contains(EvqFlags::WAKEUP) {
            assert!(
                self.waiting.load(Ordering::Relaxed),
                "message parked on an inactive vcore of a running process"
            );
            assert!(
                self.wakeups.load(Ordering::Relaxed) > 0,
                "WAITING process holding the message was not woken"
            );
        }
    }
}

fn payload(_: &Receiver<'_, NoPages>, _: u32, msg: &EventMsg, data: usize) {
    // SAFETY: `data` is the address of `Proc::payloads`, alive for the run.
    let seen = unsafe { &*std::ptr::with_exposed_provenance::<AtomicUsize>(data) };
    seen.fetch_or(1 << msg.ev_type, Ordering::Relaxed);
}

fn count(_: &Receiver<'_, NoPages>, _: u32, _: &EventMsg, data: usize) {
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

// SAFETY: accepts only ranges inside procdata and the queue, both owned by
// the `Proc` (alive as long as `&self`), with exposed provenance.
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
        let ok = regions
            .into_iter()
            .chain(pages)
            .any(|(b, l)| addr >= b && addr.checked_add(len).is_some_and(|e| e <= b + l));
        if ok {
            NonNull::new(std::ptr::with_exposed_provenance_mut(addr))
        } else {
            None
        }
    }
}

impl UserPageAlloc for Proc {
    fn alloc_user_page(&self) -> Option<usize> {
        None
    }
}

impl UcqLocks for Proc {
    fn with_ucq_lock<R>(&self, _: usize, f: impl FnOnce() -> R) -> R {
        f() // no UCQs in this model
    }
}

impl ProcOps for Proc {
    fn is_mcp(&self) -> bool {
        true
    }
    fn is_dying(&self) -> bool {
        false
    }
    fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::Acquire)
    }
    fn num_vcores(&self) -> u32 {
        V as u32
    }
    fn max_vcores(&self) -> u32 {
        V as u32
    }
    fn vcore_is_mapped(&self, v: u32) -> bool {
        self.mapped[v as usize].load(Ordering::Acquire)
    }
    fn online_head(&self) -> Option<u32> {
        self.head(0)
    }
    fn bulk_preempted_head(&self) -> Option<u32> {
        self.head(1)
    }
    fn inactive_head(&self) -> Option<u32> {
        self.head(2)
    }
    fn with_proc_lock<R>(&self, f: impl FnOnce() -> R) -> R {
        let _l = self.lock.lock().unwrap();
        f()
    }
    fn ipi_vcore(&self, _: u32) {}
    fn wakeup(&self) {
        self.wakeups.fetch_add(1, Ordering::Relaxed);
        // Rule 4: a wakeup starts the inactive list's head.
        let mut l = self.lock.lock().unwrap();
        if self.waiting.load(Ordering::Acquire) && !l.inactive.is_empty() {
            let v = l.inactive.remove(0);
            l.online.push(v);
            self.mapped[v as usize].store(true, Ordering::Release);
            self.waiting.store(false, Ordering::Release);
            self.publish_heads(&l);
        }
    }
    fn procdata_addr(&self) -> usize {
        Self::addr(&*self.procdata)
    }
    fn stats(&self) -> &EventStats {
        &self.stats
    }
}

/// Model threads get big stacks: procdata and the handler table are built
/// by value, which overflows loom's default coroutine stack.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::Builder::new().stack_size(4 << 20).spawn(f).unwrap()
}

/// `loom::model`, with the body itself on a big-stack thread.
fn model(f: fn()) {
    loom::model(move || spawn(f).join().unwrap());
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

/// The last online vcore yields (the process goes WAITING) while the kernel
/// sends an indirection without SPAM_INDIR, with WAKEUP, to that very
/// vcore: the INDIR goes straight to its public mailbox, no lock taken. The
/// yield and the WAKEUP check must not miss each other, or the process
/// sleeps with the alert parked on a vcore nobody starts.
#[test]
fn last_yield_races_a_wakeup_send() {
    model(|| {
        let p = Proc::new(EvqFlags::empty());
        {
            // Vcore 1 is already inactive: vcore 0 is the last one online.
            let mut l = p.lock.lock().unwrap();
            l.online = vec![0];
            l.inactive = vec![1];
            p.mapped[1].store(false, Ordering::Relaxed);
            p.procdata.vcpd[1].clear_flags(VcpdFlags::CAN_RCV_MSG, Ordering::Relaxed);
            p.publish_heads(&l);
        }
        p.indir_q.evq.set_flags(EvqFlags::INDIR | EvqFlags::WAKEUP);
        let vc0 = {
            let p = p.clone();
            spawn(move || p.vcore_yield(0))
        };
        event_core::send_event(&*p, Proc::addr(&*p.indir_q), &EventMsg::new(5), 0).unwrap();
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
                let rx = Receiver::new(&*p.procdata, &handlers, &NoPages);
                for _ in 0..2 {
                    if p.procdata.vcpd[0].notif_pending.load(Ordering::Acquire) {
                        rx.handle_events(0);
                    } else {
                        thread::yield_now();
                    }
                }
            })
        };
        for t in [3u16, 4] {
            event_core::send_event(&*p, Proc::addr(&*p.indir_q), &EventMsg::new(t), 0).unwrap();
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
            Receiver::new(&*p.procdata, &handlers, &NoPages).handle_events(0);
        }
        assert_eq!(
            p.payloads.load(Ordering::Relaxed),
            1 << 3 | 1 << 4,
            "a payload is stranded without an alert"
        );
    });
}
