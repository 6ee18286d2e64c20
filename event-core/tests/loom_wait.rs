//! Loom models of waiting on several queues (`recv::wait`): threads wait
//! while the kernel sends and the vcore handles the alerts, and while
//! timeouts cancel waits. On every interleaving:
//!
//! - **no lost wakeup**: a waiter without a deadline whose queues get a
//!   message it can take returns (a lost wakeup leaves it parked forever,
//!   which loom reports as a deadlock);
//! - **exactly once**: every message is returned by one waiter or is still
//!   in its queue, never returned twice;
//! - **no registration leaked**: every controller is empty at the end;
//! - **no early timeout**: a waiter that timed out saw the clock at or
//!   past its deadline.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test
//! --release --target-dir target/loom -p event-core --test loom_wait`.
//!
//! Each model names the mutations of the code under test it catches
//! (checked by making them and running the model).
//!
//! The model process: two vcores, both online, CEQ VCPD mailboxes (an
//! indirection carries its queue's address, which a bitmap cannot); two
//! big queues with bitmap mailboxes, queue `i` alerting vcore `i`, each
//! with a `WaitQueue` attached. The notified vcore runs on a thread of its
//! own, except in the timeout model (loom's thread limit), where the
//! kernel thread runs `handle_events` after its sends, as the notified
//! vcore would. Time is a loom atomic; a timer thread moves it to the
//! deadline and unparks the waiter, as a timer interrupt would.

#![cfg(loom)]

#[path = "common/loom_threads.rs"]
mod loom_threads;

use loom_threads::{model, spawn, translate_in};
use std::ptr::NonNull;

use event_core::recv::setup::{self, MboxKind};
use event_core::recv::wait::{self, ThreadRuntime, ThreadToken, WaitError, WaitQueue};
use event_core::recv::{HandlerTable, Receiver, VcoreRuntime};
use event_core::testing::thread_cpu_index;
use event_core::vcores::{ProcKind, VcoreSet};
use event_core::{PcoreId, ProcDataRef, ProcEvents, ProcOps, VcoreId};
use loom::sync::Arc;
use loom::sync::atomic::AtomicU64;
use loom::thread;
use vcpd_abi::sync::{AtomicI32, Ordering};
use vcpd_abi::{
    CeqEvent, CeqOp, EventMsg, EventQueueBig, EvqFlags, ProcDataN, UserAddr, UserMemory, VcpdFlags,
};

const V: usize = 2;
/// The timed waiter's deadline (model clock units).
const DEADLINE: u64 = 10;

fn vc(v: u32) -> VcoreId {
    VcoreId::new(v).unwrap()
}

/// The thread runtime of the model: loom's park/unpark, a loom clock.
struct LoomThreads {
    clock: AtomicU64,
    threads: std::sync::Mutex<Vec<thread::Thread>>,
}

impl ThreadRuntime for LoomThreads {
    fn current(&self) -> ThreadToken {
        let me = thread::current();
        let mut all = self.threads.lock().unwrap();
        let i = match all.iter().position(|t| t.id() == me.id()) {
            Some(i) => i,
            None => {
                all.push(me);
                all.len() - 1
            }
        };
        ThreadToken::new(i + 1).unwrap()
    }
    fn park(&self, _deadline: Option<u64>) {
        // The timer thread unparks a timed waiter when the clock reaches
        // its deadline.
        thread::park();
    }
    fn unpark(&self, t: ThreadToken) {
        let th = self.threads.lock().unwrap().get(t.get() - 1).cloned();
        if let Some(th) = th {
            th.unpark();
        }
    }
    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }
}

struct Proc {
    // Declared first, dropped first: the controllers borrow the boxes below.
    ctl: [WaitQueue<'static>; 2],
    rt: Box<LoomThreads>,
    queues: [Box<EventQueueBig>; 2],
    procdata: Box<ProcDataN<V>>,
    ceq_events: [Box<[CeqEvent; 16]>; V],
    ceq_rings: [Box<[AtomicI32; 4]>; V],
    events: ProcEvents<VcoreSet<V>>,
}

fn addr<T>(r: &T) -> usize {
    (r as *const T).expose_provenance()
}

/// A `'static` view of a boxed value owned by a `Proc`.
///
/// # Safety
/// The box must outlive every use of the reference (in `Proc`, the
/// controllers that hold these are dropped before the boxes).
unsafe fn forever<T: ?Sized>(b: &T) -> &'static T {
    // SAFETY: the caller keeps the pointee alive and unmoved (a box's
    // contents never move) for as long as the reference is used.
    unsafe { &*(b as *const T) }
}

impl Proc {
    /// Queue `i` alerts vcore `i` with `flags[i]`.
    fn new(flags: [EvqFlags; 2]) -> Arc<Self> {
        let rt = Box::new(LoomThreads {
            clock: AtomicU64::new(0),
            threads: std::sync::Mutex::new(Vec::new()),
        });
        let queues: [Box<EventQueueBig>; 2] = std::array::from_fn(|_| Box::default());
        for (i, q) in queues.iter().enumerate() {
            setup::init_big_evq(q, MboxKind::Bitmap, flags[i], vc(i as u32), &NoPages).unwrap();
        }
        // SAFETY: `Proc` owns `rt` and `queues` and drops `ctl` first.
        let ctl = std::array::from_fn(|i| unsafe {
            WaitQueue::new(forever(&queues[i].evq), forever::<LoomThreads>(&rt))
        });
        let p = Self {
            ctl,
            rt,
            queues,
            procdata: Box::new(ProcDataN::new()),
            ceq_events: std::array::from_fn(|_| {
                Box::new(std::array::from_fn(|_| CeqEvent::default()))
            }),
            ceq_rings: std::array::from_fn(|_| {
                Box::new(std::array::from_fn(|_| AtomicI32::new(0)))
            }),
            events: ProcEvents::new(VcoreSet::new(ProcKind::Mcp, V as u32, thread_cpu_index)),
        };
        for v in 0..V {
            let vcpd = &p.procdata.vcpd[v];
            let kind = MboxKind::Ceq {
                op: CeqOp::Or,
                events: &*p.ceq_events[v],
                ring: &*p.ceq_rings[v],
            };
            setup::init_mbox(&vcpd.ev_mbox_public, kind, &NoPages).unwrap();
            setup::init_mbox(&vcpd.ev_mbox_private, MboxKind::Bitmap, &NoPages).unwrap();
            vcpd.set_flags(VcpdFlags::CAN_RCV_MSG, Ordering::Relaxed);
            let _ = p.events.vcores().grant(PcoreId::new(v as u32)).unwrap();
        }
        for c in &p.ctl {
            // SAFETY: the controllers live in the `Proc`, which outlives
            // every thread of the model run (they hold an `Arc` of it).
            unsafe { wait::attach_unchecked(c) }.unwrap();
        }
        Arc::new(p)
    }

    fn receiver<'a>(&'a self, handlers: &'a HandlerTable<NoPages>) -> Receiver<'a, NoPages> {
        // SAFETY: the model's queues are set up by `setup` in boxes the
        // `Proc` owns for the whole model run; watched queues and
        // controllers live as long.
        unsafe { Receiver::new(&*self.procdata, handlers, &NoPages) }
    }

    fn send(&self, q: usize, ty: u16) {
        event_core::send_event(
            self,
            UserAddr::new(addr(&self.queues[q].evq)),
            &EventMsg::new(ty),
            vc(0),
        )
        .unwrap();
    }

    fn send_batch(&self, q: usize, types: &[u16]) {
        let msgs: Vec<EventMsg> = types.iter().map(|&t| EventMsg::new(t)).collect();
        event_core::send_event_batch(self, UserAddr::new(addr(&self.queues[q].evq)), &msgs, vc(0))
            .unwrap();
    }

    /// The notified vcore `v` handles its events (indirections, watched
    /// queues), as after the notification.
    fn vcore_handles(&self, v: u32, handlers: &HandlerTable<NoPages>) {
        self.receiver(handlers).handle_events(vc(v));
    }

    /// Waits on the given queues; the message's type, or the error.
    fn wait(&self, qs: &[usize], deadline: Option<u64>) -> Result<u16, WaitError> {
        let handlers = HandlerTable::new();
        let set: Vec<&WaitQueue<'_>> = qs.iter().map(|&i| &self.ctl[i]).collect();
        let got = self.receiver(&handlers).wait_any(&*self.rt, &set, deadline);
        got.map(|(i, m)| {
            assert_eq!(m.ev_type / 10, qs[i] as u16, "message from the wrong queue");
            m.ev_type
        })
    }

    /// Types still queued in queue `q`'s bitmap.
    fn left_in(&self, q: usize) -> Vec<u16> {
        let b = self.queues[q].ev_imbox.as_evbitmap();
        std::iter::from_fn(|| evbitmap::try_recv(b))
            .map(|m| m.ev_type)
            .collect()
    }

    /// Every sent type exactly once among what the waiters got and what
    /// is left; no controller holds a registration.
    fn assert_exactly_once(&self, sent: &[u16], got: &[u16]) {
        let mut all: Vec<u16> = got.to_vec();
        all.extend(self.left_in(0));
        all.extend(self.left_in(1));
        all.sort_unstable();
        let mut want = sent.to_vec();
        want.sort_unstable();
        assert_eq!(all, want, "a message lost or delivered twice (got {got:?})");
        for (i, c) in self.ctl.iter().enumerate() {
            assert_eq!(c.waiters(), 0, "registration leaked on queue {i}");
        }
    }
}

/// Vcore `v` on its own core: once notified (`notif_pending`), it
/// handles its events (with `watch`, the watched queue 0 too).
fn vcore(p: &Arc<Proc>, v: u32, watch: bool) -> thread::JoinHandle<()> {
    let p = p.clone();
    spawn(move || {
        let handlers = HandlerTable::new();
        if watch {
            // SAFETY: the queue lives in the `Proc`, which outlives
            // the table.
            unsafe { handlers.watch_unchecked(&p.queues[0].evq) }.unwrap();
        }
        while !p.procdata.vcpd[v as usize]
            .notif_pending
            .load(Ordering::Acquire)
        {
            thread::yield_now();
        }
        p.vcore_handles(v, &handlers);
    })
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

// SAFETY: accepts only ranges inside procdata, the queues and the CEQ
// storage, all owned by the `Proc` (alive as long as `&self`), with
// exposed provenance.
unsafe impl UserMemory for Proc {
    fn translate(&self, a: usize, len: usize) -> Option<NonNull<u8>> {
        let mut regions = vec![(addr(&*self.procdata), size_of::<ProcDataN<V>>())];
        for q in &self.queues {
            regions.push((addr(&**q), size_of::<EventQueueBig>()));
        }
        for v in 0..V {
            regions.push((addr(&*self.ceq_events[v]), size_of::<[CeqEvent; 16]>()));
            regions.push((addr(&*self.ceq_rings[v]), size_of::<[AtomicI32; 4]>()));
        }
        translate_in(regions, a, len)
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
    fn make_runnable(&self) {}
}

/// One waiter on both queues; the kernel sends to queue 1 (INDIR) and
/// vcore 1 handles the indirection.
///
/// Catches: registering after the look instead of before (the send and
/// its wakeup fall between the look and the registration: deadlock); the
/// handler draining the queue instead of waking (`attach` not setting
/// `ev_handler`: deadlock).
#[test]
fn a_send_wakes_a_waiter_registered_on_several_queues() {
    model(|| {
        let p = Proc::new([EvqFlags::INDIR, EvqFlags::INDIR]);
        let w = {
            let p = p.clone();
            spawn(move || p.wait(&[0, 1], None))
        };
        let vcore = vcore(&p, 1, false);
        p.send(1, 10);
        vcore.join().unwrap();
        let got = w.join().unwrap().expect("no deadline: a message");
        p.assert_exactly_once(&[10], &[got]);
    });
}

/// Two waiters on overlapping sets ({0, 1} and {1}); one batch of two
/// messages to queue 1, one indirection, one handler run.
///
/// Catches: waking only the first registered waiter instead of all (the
/// other one sleeps with a message in its queue: deadlock); a mailbox
/// claim that is not exactly-once (e.g. the bitmap consumer clearing a
/// bit with a load and a store instead of `fetch_and`: both waiters take
/// the same message).
#[test]
fn overlapping_waiters_share_a_batch_exactly_once() {
    model(|| {
        let p = Proc::new([EvqFlags::INDIR, EvqFlags::INDIR]);
        let w1 = {
            let p = p.clone();
            spawn(move || p.wait(&[0, 1], None))
        };
        let w2 = {
            let p = p.clone();
            spawn(move || p.wait(&[1], None))
        };
        let vcore = vcore(&p, 1, false);
        p.send_batch(1, &[10, 11]);
        vcore.join().unwrap();
        let got = [w1.join().unwrap().unwrap(), w2.join().unwrap().unwrap()];
        p.assert_exactly_once(&[10, 11], &got);
    });
}

/// A timed waiter and an untimed one on queue 0; the kernel sends two
/// messages (each alerted and handled) while the timer fires.
///
/// Catches: a timeout that returns without deregistering (leak); a
/// cancellation that takes a message and returns the timeout anyway
/// (lost); a waiter that, woken with nothing to take, reports a timeout
/// without checking the clock (early timeout).
#[test]
fn a_timeout_racing_sends_loses_nothing_and_leaks_nothing() {
    model(|| {
        let p = Proc::new([EvqFlags::INDIR, EvqFlags::INDIR]);
        let timed = {
            let p = p.clone();
            spawn(move || {
                let r = p.wait(&[0], Some(DEADLINE));
                if r == Err(WaitError::TimedOut) {
                    assert!(p.rt.now() >= DEADLINE, "timed out before the deadline");
                }
                r
            })
        };
        let untimed = {
            let p = p.clone();
            spawn(move || p.wait(&[0], None))
        };
        let timer = {
            let p = p.clone();
            let th = timed.thread().clone();
            spawn(move || {
                p.rt.clock.store(DEADLINE, Ordering::SeqCst);
                th.unpark();
            })
        };
        let handlers = HandlerTable::new();
        for ty in [1, 2] {
            p.send(0, ty);
            p.vcore_handles(0, &handlers);
        }
        timer.join().unwrap();
        let mut got = vec![untimed.join().unwrap().expect("no deadline: a message")];
        match timed.join().unwrap() {
            Ok(t) => got.push(t),
            Err(e) => assert_eq!(e, WaitError::TimedOut),
        }
        p.assert_exactly_once(&[1, 2], &got);
    });
}

/// A bare IPI (no indirection) on a watched queue: the notified vcore's
/// `handle_events` must reach the waiter.
///
/// Catches: `handle_events` not servicing watched queues (deadlock); the
/// wakeup handler's own `SeqCst` fence removed (nothing else on this path
/// orders the post before the read of the registrations: the waiter
/// misses the message and the handler misses the waiter).
#[test]
fn a_watched_ipi_queue_wakes_its_waiter() {
    model(|| {
        let p = Proc::new([EvqFlags::IPI, EvqFlags::INDIR]);
        let w = {
            let p = p.clone();
            spawn(move || p.wait(&[0], None))
        };
        let vcore = vcore(&p, 0, true);
        p.send(0, 3);
        vcore.join().unwrap();
        let got = w.join().unwrap().unwrap();
        p.assert_exactly_once(&[3], &[got]);
    });
}
