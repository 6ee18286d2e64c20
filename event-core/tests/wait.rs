//! Waiting on several queues, batch sends and batch drains, on the mock
//! process: each alert path, timeouts, registration bookkeeping, and what a
//! batch delivers and counts.

#![cfg(not(loom))]

mod common;
#[path = "common/threads.rs"]
mod threads;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::{MockProc, VCORES, vc};
use event_core::recv::setup::MboxKind;
use event_core::recv::wait::{
    self, AttachError, ThreadRuntime, ThreadToken, WAITERS_PER_QUEUE, WaitError, WaitQueue,
};
use event_core::recv::{HandlerTable, Receiver};
use event_core::{
    BatchDropped, DropKind, Dropped, SpamPath, VcoreId, send_event, send_event_batch,
};
use threads::STD_THREADS;
use vcpd_abi::sync::AtomicI32;
use vcpd_abi::{CeqEvent, CeqOp, EventMsg, EventQueue, EventQueueBig, EvqFlags, UserAddr};

const V0: VcoreId = VcoreId::ZERO;

fn msg(n: u32) -> EventMsg {
    EventMsg::new(9).with_arg2(n)
}

fn msgs(range: std::ops::Range<u32>) -> Vec<EventMsg> {
    range.map(msg).collect()
}

/// A mock process and handler table that live for the whole test binary
/// (queue controllers reached through `ev_udata` must be `'static`).
#[derive(Clone, Copy)]
struct Env {
    p: &'static MockProc,
    handlers: &'static HandlerTable<MockProc>,
}

fn env() -> Env {
    Env {
        p: Box::leak(Box::new(MockProc::new())),
        handlers: Box::leak(Box::new(HandlerTable::new())),
    }
}

impl Env {
    fn rx(&self) -> Receiver<'static, MockProc> {
        self.p.receiver(self.handlers)
    }

    /// A big UCQ queue with `flags` (alerting `vcore`) and a controller
    /// attached, unparking through `rt`.
    fn waitable(
        &self,
        flags: EvqFlags,
        vcore: u32,
        rt: &'static dyn ThreadRuntime,
    ) -> (UserAddr<EventQueue>, &'static WaitQueue<'static>) {
        let q = self.p.big_evq(MboxKind::Ucq, flags, vcore);
        let ctl = Box::leak(Box::new(WaitQueue::new(self.p.evq(q), rt)));
        wait::attach(ctl).unwrap();
        (q, ctl)
    }

    /// What the vcores do when notified: `handle_events` on every vcore
    /// whose `notif_pending` is set. Returns how many ran.
    fn run_vcores(&self) -> usize {
        let rx = self.rx();
        let mut ran = 0;
        for v in (0..VCORES as u32).filter(|&v| self.p.notif_pending(v)) {
            rx.handle_events(vc(v));
            ran += 1;
        }
        ran
    }
}

/// A single-threaded runtime in which the waiting thread *is* the vcore:
/// `park` runs a pending "sender" step once, then the vcores' event
/// handling, and returns at once; if nobody unparked us meanwhile it
/// counts an idle park and lets a millisecond of clock pass (as a blocked
/// thread would see). Deterministic: shows whether an alert path woke the
/// waiter or the waiter only found the message by looking again.
struct Inline {
    env: Env,
    sender: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    permit: AtomicBool,
    unparks: AtomicU64,
    idle_parks: AtomicU64,
    clock: AtomicU64,
}

impl Inline {
    fn new(env: Env) -> &'static Self {
        Box::leak(Box::new(Self {
            env,
            sender: Mutex::new(None),
            permit: AtomicBool::new(false),
            unparks: AtomicU64::new(0),
            idle_parks: AtomicU64::new(0),
            clock: AtomicU64::new(0),
        }))
    }

    fn on_first_park(&self, f: impl FnOnce() + Send + 'static) {
        *self.sender.lock().unwrap() = Some(Box::new(f));
    }
}

impl ThreadRuntime for Inline {
    fn current(&self) -> ThreadToken {
        ThreadToken::new(1).unwrap()
    }
    fn park(&self, _deadline: Option<u64>) {
        let send = self.sender.lock().unwrap().take();
        if let Some(send) = send {
            send();
        }
        self.env.run_vcores();
        if !self.permit.swap(false, Ordering::AcqRel) {
            self.idle_parks.fetch_add(1, Ordering::Relaxed);
            self.clock.fetch_add(1_000_000, Ordering::Relaxed);
        }
    }
    fn unpark(&self, _: ThreadToken) {
        self.unparks.fetch_add(1, Ordering::Relaxed);
        self.permit.store(true, Ordering::Release);
    }
    fn now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }
}

#[test]
fn a_message_already_queued_is_taken_without_registering() {
    let e = env();
    let rt = Inline::new(e);
    let (_, a) = e.waitable(EvqFlags::INDIR | EvqFlags::SPAM_INDIR, 1, rt);
    let (qb, b) = e.waitable(EvqFlags::INDIR | EvqFlags::SPAM_INDIR, 1, rt);
    send_event(e.p, qb, &msg(7), V0).unwrap();
    assert_eq!(e.rx().try_wait_any(&[a, b]), Some((1, msg(7))));
    assert_eq!(e.rx().try_wait_any(&[a, b]), None, "taken once");
    send_event(e.p, qb, &msg(8), V0).unwrap();
    assert_eq!(e.rx().wait_any(rt, &[a, b], None), Ok((1, msg(8))));
    assert_eq!(rt.clock.load(Ordering::Relaxed), 0, "never parked");
    assert_eq!((a.waiters(), b.waiters()), (0, 0));
}

/// The three alert paths of the module docs, each waking the parked
/// waiter (an unpark, no idle park) with the message from the right queue.
#[test]
fn indir_spam_indir_and_a_watched_ipi_each_wake_the_waiter() {
    for flags in [
        EvqFlags::INDIR,
        EvqFlags::INDIR | EvqFlags::SPAM_INDIR,
        EvqFlags::IPI,
    ] {
        let e = env();
        let rt = Inline::new(e);
        let (_, other) = e.waitable(EvqFlags::INDIR, 0, rt);
        let (q, ctl) = e.waitable(flags, 2, rt);
        if flags == EvqFlags::IPI {
            e.handlers.watch(e.p.evq(q)).unwrap();
            assert!(e.handlers.is_watched(e.p.evq(q)));
        }
        let p = e.p;
        rt.on_first_park(move || send_event(p, q, &msg(5), V0).unwrap());
        let got = e.rx().wait_any(rt, &[other, ctl], Some(50_000_000));
        assert_eq!(got, Ok((1, msg(5))), "{flags:?}");
        assert_eq!(
            rt.unparks.load(Ordering::Relaxed),
            1,
            "{flags:?}: woken once"
        );
        assert_eq!(rt.idle_parks.load(Ordering::Relaxed), 0, "{flags:?}");
        assert_eq!((ctl.waiters(), other.waiters()), (0, 0), "{flags:?}");
    }
}

/// Without the watch, a bare IPI drains VCPD mailboxes only: the waiter is
/// not woken and finds the message only when its park returns anyway.
#[test]
fn an_unwatched_ipi_queue_does_not_wake_the_waiter() {
    let e = env();
    let rt = Inline::new(e);
    let (q, ctl) = e.waitable(EvqFlags::IPI, 2, rt);
    let p = e.p;
    rt.on_first_park(move || send_event(p, q, &msg(5), V0).unwrap());
    let got = e.rx().wait_any(rt, &[ctl], Some(50_000_000));
    assert_eq!(got, Ok((0, msg(5))));
    assert_eq!(rt.unparks.load(Ordering::Relaxed), 0);
    assert_eq!(rt.idle_parks.load(Ordering::Relaxed), 1);
    // Watched, then unwatched again: back to not waking.
    assert!(!e.handlers.unwatch(e.p.evq(q)));
    e.handlers.watch(e.p.evq(q)).unwrap();
    e.handlers.watch(e.p.evq(q)).unwrap();
    assert!(e.handlers.unwatch(e.p.evq(q)));
    assert!(!e.handlers.is_watched(e.p.evq(q)));
}

#[test]
fn a_watched_queue_without_a_controller_is_drained_and_dispatched() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    fn count(_: &Receiver<'_, MockProc>, _: VcoreId, m: &EventMsg, _: usize) {
        SEEN.fetch_add(u64::from(m.ev_arg2), Ordering::Relaxed);
    }
    let e = env();
    e.handlers.register(9, count, 0).unwrap();
    let q = e.p.big_evq(MboxKind::Ucq, EvqFlags::IPI, 3);
    e.handlers.watch(e.p.evq(q)).unwrap();
    send_event_batch(e.p, q, &msgs(1..4), V0).unwrap();
    assert_eq!(e.run_vcores(), 1);
    assert_eq!(SEEN.load(Ordering::Relaxed), 6);
}

#[test]
fn a_timeout_fires_no_earlier_than_its_deadline_and_leaves_nothing_registered() {
    let e = env();
    let rt = Inline::new(e);
    let (_, a) = e.waitable(EvqFlags::INDIR, 0, rt);
    let (_, b) = e.waitable(EvqFlags::INDIR, 0, rt);
    let got = e.rx().wait_any(rt, &[a, b], Some(3_500_000));
    assert_eq!(got, Err(WaitError::TimedOut));
    assert!(rt.now() >= 3_500_000);
    assert_eq!(rt.idle_parks.load(Ordering::Relaxed), 4);
    assert_eq!((a.waiters(), b.waiters()), (0, 0));
    // A deadline already past: one look, no registration, no park.
    let got = e.rx().wait_any(rt, &[a, b], Some(0));
    assert_eq!(got, Err(WaitError::TimedOut));
    assert_eq!(rt.idle_parks.load(Ordering::Relaxed), 4);
    // On the real clock too.
    let deadline = STD_THREADS.now() + 3_000_000;
    let (_, c) = e.waitable(EvqFlags::INDIR, 0, &STD_THREADS);
    assert_eq!(
        e.rx().wait_any(&STD_THREADS, &[c], Some(deadline)),
        Err(WaitError::TimedOut)
    );
    assert!(STD_THREADS.now() >= deadline);
    assert_eq!(c.waiters(), 0);
}

#[test]
fn attach_wants_a_queue_with_its_own_mailbox() {
    let e = env();
    let q = e.p.vcpd_evq(EvqFlags::IPI, 1);
    let ctl = Box::leak(Box::new(WaitQueue::new(e.p.evq(q), &STD_THREADS)));
    assert_eq!(wait::attach(ctl), Err(AttachError::NoMailbox));
    assert_eq!(
        e.rx().wait_any(&STD_THREADS, &[ctl], Some(0)).unwrap_err(),
        WaitError::TimedOut
    );
    let mut none = [];
    assert_eq!(
        e.rx().wait_any_batch(&STD_THREADS, &[ctl], None, &mut none),
        Err(WaitError::NoRoom)
    );
}

/// Detached, the queue's alerts drain it again instead of waking anyone.
#[test]
fn detach_gives_the_queue_back_to_draining() {
    let e = env();
    let rt = Inline::new(e);
    let (q, _) = e.waitable(EvqFlags::INDIR, 1, rt);
    wait::detach(e.p.evq(q));
    send_event(e.p, q, &msg(1), V0).unwrap();
    e.run_vcores();
    assert!(
        e.rx().mbox_is_empty(
            &q.cast::<EventQueueBig>()
                .check(&e.p.arena)
                .unwrap()
                .ev_imbox
        )
    );
}

/// Real threads: a full queue of parked waiters, a ninth refused (and its
/// registration on its other queue undone), then one batch, one
/// indirection, one wakeup of all, and each message taken exactly once.
#[test]
fn parked_threads_each_take_one_message_of_a_batch() {
    let e = env();
    let (q, ctl) = e.waitable(EvqFlags::INDIR | EvqFlags::SPAM_INDIR, 1, &STD_THREADS);
    let (_, spare) = e.waitable(EvqFlags::INDIR, 1, &STD_THREADS);
    let waiters: Vec<_> = (0..WAITERS_PER_QUEUE)
        .map(|_| thread::spawn(move || e.rx().wait_any(&STD_THREADS, &[ctl], None)))
        .collect();
    while ctl.waiters() < WAITERS_PER_QUEUE {
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        e.rx().wait_any(&STD_THREADS, &[spare, ctl], None),
        Err(WaitError::TooManyWaiters { queue: 1 })
    );
    assert_eq!(spare.waiters(), 0, "the partial registration was undone");
    let indirs = e.p.stats().indirs_sent();
    let batch = msgs(0..WAITERS_PER_QUEUE as u32);
    send_event_batch(e.p, q, &batch, V0).unwrap();
    assert_eq!(e.p.stats().indirs_sent(), indirs + 1);
    assert_eq!(e.run_vcores(), 1);
    let mut got: Vec<u32> = waiters
        .into_iter()
        .map(|t| {
            let (i, m) = t.join().unwrap().unwrap();
            assert_eq!(i, 0);
            m.ev_arg2
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..WAITERS_PER_QUEUE as u32).collect::<Vec<_>>());
    assert_eq!(ctl.waiters(), 0);
}

#[test]
fn batch_to_an_indir_queue_posts_in_order_and_alerts_once() {
    let p = MockProc::new();
    let q = p.big_evq(MboxKind::Ucq, EvqFlags::INDIR | EvqFlags::IPI, 1);
    let sends = p.stats().sends();
    send_event_batch(&p, q, &msgs(0..200), V0).unwrap();
    assert_eq!(p.stats().sends(), sends + 200);
    assert_eq!(p.stats().indirs_sent(), 1);
    assert_eq!(p.stats().indirs_throttled(), 0);
    assert_eq!(p.ipis.lock().unwrap().as_slice(), &[1], "one notification");
    assert_eq!(p.take_public(1).len(), 1, "one indirection");
    let handlers = HandlerTable::new();
    let rx = p.receiver(&handlers);
    let mut out = [EventMsg::default(); 256];
    let n = rx.drain_event_q(p.evq(q), &mut out);
    assert_eq!(&out[..n], msgs(0..200).as_slice(), "in order, across pages");
    // An empty batch does nothing at all.
    send_event_batch(&p, q, &[], V0).unwrap();
    assert_eq!(p.stats().sends(), sends + 200);
}

#[test]
fn batch_spam_public_posts_the_whole_batch_to_each_candidate() {
    let p = MockProc::new();
    let q = p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 2);
    send_event_batch(&p, q, &msgs(0..16), V0).unwrap();
    assert_eq!(p.take_public(2), msgs(0..16));
    assert!(p.notif_pending(2));
    assert_eq!(
        p.stats().spam(SpamPath::ChosenVcore),
        1,
        "one spam per batch"
    );
    // The chosen vcore will not receive: the batch goes whole to the
    // online list's head.
    p.set_can_rcv(2, false);
    p.arrange(&[1, 0], &[3], &[2]);
    send_event_batch(&p, q, &msgs(16..32), V0).unwrap();
    assert_eq!(p.take_public(1), msgs(16..32));
    assert_eq!(p.stats().spam(SpamPath::OnlineList), 1);
}

#[test]
fn batch_with_wakeup_wakes_a_waiting_process_once() {
    let p = MockProc::new();
    let q = p.big_evq(
        MboxKind::Ucq,
        EvqFlags::INDIR | EvqFlags::SPAM_INDIR | EvqFlags::WAKEUP,
        0,
    );
    p.arrange(&[], &[], &[0, 1, 2, 3]);
    send_event_batch(&p, q, &msgs(0..10), V0).unwrap();
    assert_eq!(p.runnable.load(Ordering::Relaxed), 1);
    let spams: u64 = SpamPath::ALL.iter().map(|&s| p.stats().spam(s)).sum();
    assert_eq!(spams, 1, "one indirection");
}

/// A CEQ with 8 event types refuses type 9: the batch stops there, the
/// prefix is posted and alerted, and the two messages not delivered count
/// as drops.
#[test]
fn a_batch_refused_part_way_reports_the_delivered_prefix() {
    let p = MockProc::new();
    let events = p.arena.alloc_slice::<CeqEvent>(8).unwrap();
    let ring = p.arena.alloc_slice::<AtomicI32>(8).unwrap();
    let q = p.big_evq(
        MboxKind::Ceq {
            op: CeqOp::Or,
            events,
            ring,
        },
        EvqFlags::INDIR,
        1,
    );
    let batch = [1u16, 2, 9, 3].map(EventMsg::new);
    let err = send_event_batch(&p, q, &batch, V0).unwrap_err();
    assert!(
        matches!(
            err,
            BatchDropped {
                delivered: 2,
                why: Dropped::Ceq(_)
            }
        ),
        "{err:?}"
    );
    assert_eq!(p.stats().sends(), 4);
    assert_eq!(p.stats().drops(DropKind::MailboxRefused), 2);
    assert_eq!(p.stats().indirs_sent(), 1, "prefix alerted");
    let handlers = HandlerTable::new();
    let rx = p.receiver(&handlers);
    let mut out = [EventMsg::default(); 8];
    let n = rx.drain_event_q(p.evq(q), &mut out);
    let mut types: Vec<u16> = out[..n].iter().map(|m| m.ev_type).collect();
    types.sort_unstable();
    assert_eq!(types, [1, 2]);
    // Refused at the first message: nothing posted, nothing alerted.
    let err = send_event_batch(&p, q, &[EventMsg::new(12)], V0).unwrap_err();
    assert_eq!(err.delivered, 0);
    assert_eq!(p.stats().indirs_sent(), 1);
}

#[test]
fn extract_batch_works_for_every_mailbox_type() {
    let p = MockProc::new();
    let handlers = HandlerTable::new();
    let rx = p.receiver(&handlers);
    let mut out = [EventMsg::default(); 100];
    // UCQ: 300 messages span three pages; batches stop only when full.
    let q = p.big_evq(MboxKind::Ucq, EvqFlags::empty(), 1);
    send_event_batch(&p, q, &msgs(0..300), V0).unwrap();
    let mut got = vec![];
    loop {
        let n = rx.drain_event_q(p.evq(q), &mut out);
        if n == 0 {
            break;
        }
        assert!(n == 100, "full batches while messages remain");
        got.extend_from_slice(&out[..n]);
    }
    assert_eq!(got, msgs(0..300));
    // Bitmap: one message per set bit, lowest first.
    let q = p.big_evq(MboxKind::Bitmap, EvqFlags::empty(), 1);
    let batch = [5u16, 3, 5, 40].map(EventMsg::new);
    send_event_batch(&p, q, &batch, V0).unwrap();
    let n = rx.drain_event_q(p.evq(q), &mut out[..2]);
    assert_eq!(
        out[..n].iter().map(|m| m.ev_type).collect::<Vec<_>>(),
        [3, 5]
    );
    let n = rx.drain_event_q(p.evq(q), &mut out);
    assert_eq!(out[..n].iter().map(|m| m.ev_type).collect::<Vec<_>>(), [40]);
    // CEQ: one message per posted index, values coalesced.
    let events = p.arena.alloc_slice::<CeqEvent>(16).unwrap();
    let ring = p.arena.alloc_slice::<AtomicI32>(16).unwrap();
    let q = p.big_evq(
        MboxKind::Ceq {
            op: CeqOp::Add,
            events,
            ring,
        },
        EvqFlags::empty(),
        1,
    );
    let batch = [(4u16, 1u32), (6, 2), (4, 10)].map(|(t, v)| EventMsg::new(t).with_arg2(v));
    send_event_batch(&p, q, &batch, V0).unwrap();
    let n = rx.drain_event_q(p.evq(q), &mut out);
    let mut got: Vec<(u16, u32)> = out[..n].iter().map(|m| (m.ev_type, m.ev_arg2)).collect();
    got.sort_unstable();
    assert_eq!(got, [(4, 11), (6, 2)]);
    // A slim queue has no mailbox of its own to drain.
    let q = p.vcpd_evq(EvqFlags::empty(), 1);
    send_event(&p, q, &msg(1), V0).unwrap();
    assert_eq!(rx.drain_event_q(p.evq(q), &mut out), 0);
}

#[test]
fn a_batch_to_a_dying_process_counts_every_message_dropped() {
    let p = MockProc::new();
    let q = p.big_evq(MboxKind::Ucq, EvqFlags::INDIR, 1);
    let _ = p.set().destroy().unwrap();
    let err = send_event_batch(&p, q, &msgs(0..5), V0).unwrap_err();
    assert_eq!(
        err,
        BatchDropped {
            delivered: 0,
            why: Dropped::Dying
        }
    );
    assert_eq!(p.stats().drops(DropKind::Dying), 5);
    assert_eq!(p.stats().sends(), 0);
}
