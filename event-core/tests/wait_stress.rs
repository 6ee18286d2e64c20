//! Stress: 8 waiter threads on overlapping subsets of 6 queues, 10^6
//! messages from 2 producer threads (single sends and batches, every alert
//! path: INDIR, INDIR | SPAM_INDIR, a bare IPI on watched queues), random
//! deadlines and batch sizes. Checked: every message received exactly
//! once, by a waiter of its queue; no timeout before its deadline;
//! counters exact; no registration left.
//!
//! The producers play the notified vcores too: after each send they run
//! `handle_events` on every vcore whose `notif_pending` is set (handling
//! indirections and watched queues wakes the waiters). At the end, poison
//! messages are sent until every waiter has taken one.
//!
//! About 2 s in a debug build on a loaded two-core machine.

#![cfg(not(loom))]

mod common;
#[path = "common/threads.rs"]
mod threads;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{MockProc, VCORES, vc};
use event_core::recv::setup::MboxKind;
use event_core::recv::wait::{self, ThreadRuntime, WaitError, WaitQueue};
use event_core::recv::{HandlerTable, Receiver};
use event_core::{VcoreId, send_event, send_event_batch};
use threads::{STD_THREADS, UNPARKS};
use vcpd_abi::{EventMsg, EventQueue, EvqFlags, UserAddr};

const MESSAGES: u64 = 1_000_000;
const QUEUES: usize = 6;
const WAITERS: usize = 8;
const PRODUCERS: u64 = 2;
/// Producers pause while this many messages are unreceived.
const WINDOW: u64 = 20_000;
const T_DATA: u16 = 9;
const T_POISON: u16 = 10;

/// Queue `q`'s alert flags and vcore.
fn queue_flags(q: usize) -> (EvqFlags, u32) {
    match q {
        0 => (EvqFlags::INDIR | EvqFlags::SPAM_INDIR, 0),
        1 => (EvqFlags::INDIR, 1),
        2 => (EvqFlags::IPI, 2),
        3 => (EvqFlags::INDIR | EvqFlags::SPAM_INDIR | EvqFlags::IPI, 3),
        4 => (EvqFlags::INDIR | EvqFlags::IPI, 0),
        _ => (EvqFlags::IPI, 1),
    }
}

/// Waiter `w`'s queues: three of the six, overlapping with the others'.
fn waiter_set(w: usize) -> [usize; 3] {
    [w % QUEUES, (w + 1) % QUEUES, (w + 3) % QUEUES]
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

struct Shared {
    p: &'static MockProc,
    handlers: &'static HandlerTable<MockProc>,
    queues: Vec<UserAddr<EventQueue>>,
    ctl: Vec<&'static WaitQueue<'static>>,
    /// Bit per message: received.
    seen: Vec<AtomicU64>,
    received: AtomicU64,
    dups: AtomicU64,
    misrouted: AtomicU64,
    timeouts: AtomicU64,
    early_timeouts: AtomicU64,
    parked_waits: AtomicU64,
    poisons_taken: AtomicU64,
    waiters_done: AtomicUsize,
    next_seq: AtomicU64,
    producing: AtomicBool,
}

impl Shared {
    fn rx(&self) -> Receiver<'static, MockProc> {
        self.p.receiver(self.handlers)
    }

    /// The notified vcores handle their events.
    fn run_vcores(&self, rx: &Receiver<'_, MockProc>) {
        for v in 0..VCORES as u32 {
            if self.p.notif_pending(v) {
                rx.handle_events(vc(v));
            }
        }
    }

    fn record(&self, w: usize, q: usize, m: &EventMsg) -> bool {
        if m.ev_arg2 as usize != q || !waiter_set(w).contains(&q) {
            self.misrouted.fetch_add(1, Ordering::Relaxed);
        }
        if m.ev_type == T_POISON {
            self.poisons_taken.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let seq = m.ev_arg4;
        let bit = 1u64 << (seq % 64);
        match self.seen.get((seq / 64) as usize) {
            Some(word) if word.fetch_or(bit, Ordering::Relaxed) & bit == 0 => {}
            _ => {
                self.dups.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.received.fetch_add(1, Ordering::Release);
        false
    }
}

fn waiter(s: &'static Shared, w: usize) {
    let rx = s.rx();
    let set: Vec<&WaitQueue<'_>> = waiter_set(w).iter().map(|&q| s.ctl[q]).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((w as u64 + 1) * 0x1234_5678_9abc_def1));
    let mut buf = [EventMsg::default(); 8];
    let mut done = false;
    while !done {
        // A quarter of the waits have no deadline; the rest 0..300 µs.
        let deadline = match rng.below(4) {
            0 => None,
            _ => Some(STD_THREADS.now() + rng.below(300_000)),
        };
        let k = if rng.below(2) == 0 {
            1
        } else {
            1 + rng.below(8) as usize
        };
        let unparks = UNPARKS.load(Ordering::Relaxed);
        match rx.wait_any_batch(&STD_THREADS, &set, deadline, &mut buf[..k]) {
            Ok((i, n)) => {
                let q = waiter_set(w)[i];
                for m in &buf[..n] {
                    done |= s.record(w, q, m);
                }
            }
            Err(WaitError::TimedOut) => {
                s.timeouts.fetch_add(1, Ordering::Relaxed);
                if STD_THREADS.now() < deadline.unwrap() {
                    s.early_timeouts.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => panic!("waiter {w}: {e}"),
        }
        if UNPARKS.load(Ordering::Relaxed) != unparks {
            s.parked_waits.fetch_add(1, Ordering::Relaxed);
        }
    }
    s.waiters_done.fetch_add(1, Ordering::Release);
}

fn producer(s: &'static Shared, id: u64) {
    let rx = s.rx();
    let mut rng = Rng(0xdead_beef ^ ((id + 7) * 0x51_7cc1_b727_220a));
    let quota = MESSAGES / PRODUCERS;
    let mut sent = 0;
    let mut batch = Vec::with_capacity(32);
    while sent < quota {
        while s
            .next_seq
            .load(Ordering::Relaxed)
            .saturating_sub(s.received.load(Ordering::Acquire))
            > WINDOW
        {
            s.run_vcores(&rx);
            thread::yield_now();
        }
        let q = rng.below(QUEUES as u64) as usize;
        let n = match rng.below(3) {
            0 => 1,
            _ => (1 + rng.below(32)).min(quota - sent),
        };
        let first = s.next_seq.fetch_add(n, Ordering::Relaxed);
        let msg = |seq: u64| EventMsg::new(T_DATA).with_arg2(q as u32).with_arg4(seq);
        if n == 1 {
            send_event(s.p, s.queues[q], &msg(first), VcoreId::ZERO).unwrap();
        } else {
            batch.clear();
            batch.extend((first..first + n).map(msg));
            send_event_batch(s.p, s.queues[q], &batch, VcoreId::ZERO).unwrap();
        }
        sent += n;
        s.run_vcores(&rx);
    }
}

#[test]
fn eight_waiters_six_queues_every_message_exactly_once() {
    let start = Instant::now();
    let p: &'static MockProc = Box::leak(Box::new(MockProc::new()));
    let handlers: &'static HandlerTable<MockProc> = Box::leak(Box::new(HandlerTable::new()));
    let mut queues = vec![];
    let mut ctl = vec![];
    for q in 0..QUEUES {
        let (flags, v) = queue_flags(q);
        let addr = p.big_evq(MboxKind::Ucq, flags, v);
        let c: &'static WaitQueue<'static> =
            Box::leak(Box::new(WaitQueue::new(p.evq(addr), &STD_THREADS)));
        wait::attach(c).unwrap();
        if !flags.contains(EvqFlags::INDIR) {
            handlers.watch(p.evq(addr)).unwrap();
        }
        queues.push(addr);
        ctl.push(c);
    }
    let s: &'static Shared = Box::leak(Box::new(Shared {
        p,
        handlers,
        queues,
        ctl,
        seen: (0..MESSAGES.div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect(),
        received: AtomicU64::new(0),
        dups: AtomicU64::new(0),
        misrouted: AtomicU64::new(0),
        timeouts: AtomicU64::new(0),
        early_timeouts: AtomicU64::new(0),
        parked_waits: AtomicU64::new(0),
        poisons_taken: AtomicU64::new(0),
        waiters_done: AtomicUsize::new(0),
        next_seq: AtomicU64::new(0),
        producing: AtomicBool::new(true),
    }));
    let waiters: Vec<_> = (0..WAITERS)
        .map(|w| thread::spawn(move || waiter(s, w)))
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| thread::spawn(move || producer(s, id)))
        .collect();
    for t in producers {
        t.join().unwrap();
    }
    s.producing.store(false, Ordering::Release);
    // Every message must arrive without further sends: waiters with
    // deadlines look again; those without are woken by the alerts above.
    let rx = s.rx();
    let settle = Instant::now();
    while s.received.load(Ordering::Acquire) < MESSAGES {
        assert!(
            settle.elapsed() < Duration::from_secs(60),
            "stuck at {} of {MESSAGES} received",
            s.received.load(Ordering::Acquire)
        );
        thread::sleep(Duration::from_millis(1));
    }
    let data_sends = s.p.stats().sends();
    // Poison, one per queue per round, until every waiter has taken one.
    let mut poisons = 0u64;
    while s.waiters_done.load(Ordering::Acquire) < WAITERS {
        for (q, &addr) in s.queues.iter().enumerate() {
            let m = EventMsg::new(T_POISON).with_arg2(q as u32);
            send_event(s.p, addr, &m, VcoreId::ZERO).unwrap();
            poisons += 1;
        }
        s.run_vcores(&rx);
        thread::sleep(Duration::from_millis(1));
    }
    for t in waiters {
        t.join().unwrap();
    }
    let mut left = 0u64;
    let mut out = [EventMsg::default(); 64];
    for c in &s.ctl {
        loop {
            let n = rx.drain_event_q(c.event_queue(), &mut out);
            if n == 0 {
                break;
            }
            assert!(out[..n].iter().all(|m| m.ev_type == T_POISON));
            left += n as u64;
        }
    }
    let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let missing: u64 = s
        .seen
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let valid = (MESSAGES - i as u64 * 64).min(64);
            let mask = if valid == 64 {
                u64::MAX
            } else {
                (1 << valid) - 1
            };
            u64::from((!w.load(Ordering::Relaxed) & mask).count_ones())
        })
        .sum();
    println!(
        "{MESSAGES} messages to {QUEUES} queues, {WAITERS} waiters: received {} (missing {missing}, \
         duplicates {}, misrouted {}); timeouts {} (early {}); waits that parked and were \
         unparked {}; unparks {}; poison sent {poisons}, taken {}, left {left}; INDIRs {} \
         throttled {}; {:.1?}",
        r(&s.received),
        r(&s.dups),
        r(&s.misrouted),
        r(&s.timeouts),
        r(&s.early_timeouts),
        r(&s.parked_waits),
        UNPARKS.load(Ordering::Relaxed),
        r(&s.poisons_taken),
        s.p.stats().indirs_sent(),
        s.p.stats().indirs_throttled(),
        start.elapsed()
    );
    assert_eq!(r(&s.received), MESSAGES, "received count");
    assert_eq!(missing, 0, "messages lost");
    assert_eq!(r(&s.dups), 0, "messages received twice");
    assert_eq!(
        r(&s.misrouted),
        0,
        "a message from a queue the waiter did not wait on"
    );
    assert_eq!(r(&s.early_timeouts), 0, "a timeout before its deadline");
    assert!(
        r(&s.timeouts) > 0,
        "no deadline ever passed: the test lost its point"
    );
    assert!(
        r(&s.parked_waits) > 0,
        "no waiter was ever woken from a park"
    );
    assert_eq!(
        data_sends, MESSAGES,
        "EventStats::sends counts every message"
    );
    assert_eq!(s.p.stats().total_drops(), 0);
    assert_eq!(
        r(&s.poisons_taken) + left,
        poisons,
        "poison counted exactly"
    );
    assert!(r(&s.poisons_taken) >= WAITERS as u64);
    for (q, c) in s.ctl.iter().enumerate() {
        assert_eq!(c.waiters(), 0, "registration left on queue {q}");
    }
}
