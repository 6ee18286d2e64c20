//! Scenario 2, CEQ coalescing: totals exact with ADD and OR, including
//! through a ring small enough to overflow.
//!
//! Three big event queues with CEQ mailboxes of 64 events each: ADD with a
//! 64-slot ring, OR with a 64-slot ring, and ADD with a 4-slot ring that
//! overflows (the consumers then recover by scanning the events array).
//! Flags `IPI | INDIR | SPAM_INDIR`. The kernel CPU posts 30 000 values to
//! random entries of random queues (`ev_type` = entry, `ev_arg2` = value:
//! 1..=100 for ADD, one random bit for OR) and keeps the expected sum or
//! union per entry. The vcores drain the queues (on indirections and when
//! they find them non-empty) through each queue's own handler
//! (`ev_handler`: a CEQ's entry numbers are not event types, so they are
//! not dispatched through the handler table), adding up what they get.
//! First, with every vcore bulk-preempted, a burst of 16 distinct entries
//! into the 4-slot ring, so it overflows whatever the machine's speed.
//! Checked: every entry's received total equals the sent one, and the
//! small ring did overflow.

use crate::process::vc;
use core::fmt::Write;
use core::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use event_core::VcoreId;
use vcpd_abi::UserAddr;

use event_core::recv::setup::{self, MboxKind};
use event_core::send_event;
use vcpd_abi::{CeqEvent, CeqOp, EventMbox, EventMsg, EventQueue, EventQueueBig, EvqFlags};

use super::common::{self, Report, Rng, Snap, wait_until};
use crate::process::sched;
use crate::user::Rx;
use crate::user::program::{Step, VcoreProgram};
use crate::user::runtime::{self, own};

const MESSAGES: u64 = 30_000;
/// Values sent in short mode (still enough to overflow the 4-slot ring).
const MESSAGES_SHORT: u64 = 3_000;
const EVENTS: usize = 64;
const QUEUES: usize = 3;
/// (operation, ring size) of each queue.
const SHAPES: [(CeqOp, usize); QUEUES] = [(CeqOp::Add, 64), (CeqOp::Or, 64), (CeqOp::Add, 4)];

// Written or read by the process's code: in `.user_data`.
#[unsafe(link_section = ".user_data")]
static QUEUE: [AtomicUsize; QUEUES] = [const { AtomicUsize::new(0) }; QUEUES];
#[unsafe(link_section = ".user_data")]
static RECEIVED: [[AtomicU64; EVENTS]; QUEUES] =
    [const { [const { AtomicU64::new(0) }; EVENTS] }; QUEUES];

/// Ring 3: the queues' `ev_handler`: drain the CEQ, add up the values.
extern "C" fn ceq_sink(ev_q: &EventQueue) {
    let qi = ev_q.ev_udata.load(Ordering::Relaxed);
    let Some(mbox) = own::<EventMbox>(ev_q.ev_mbox.load(Ordering::Acquire)) else {
        return;
    };
    if qi >= QUEUES {
        return;
    }
    let rx = runtime::rx();
    while let Some(m) = rx.extract_one(mbox) {
        let Some(slot) = RECEIVED[qi].get(usize::from(m.ev_type)) else {
            continue;
        };
        // `ev_arg4` carries the whole coalesced value (`ev_arg2` its low
        // 32 bits, the C ABI's field).
        match SHAPES[qi].0 {
            CeqOp::Add => slot.fetch_add(m.ev_arg4, Ordering::Relaxed),
            CeqOp::Or => slot.fetch_or(m.ev_arg4, Ordering::Relaxed),
        };
    }
}

/// Ring 3: drains any queue that is not empty.
struct Drain;

impl VcoreProgram for Drain {
    fn step(&self, rx: &Rx, v: u32) -> Step {
        let mut busy = false;
        for q in &QUEUE {
            if let Some(q) = own::<EventQueueBig>(q.load(Ordering::Acquire)) {
                if !rx.mbox_is_empty(&q.ev_imbox) {
                    rx.handle_event_q(vc(v), &q.evq);
                    busy = true;
                }
            }
        }
        if busy { Step::Busy } else { Step::Idle }
    }
}

static DRAIN: &dyn VcoreProgram = &Drain;

/// Runs the scenario.
pub(super) fn run(r: &mut Report) {
    let p = super::app();
    let rt = p.runtime();
    let messages = super::scaled(MESSAGES, MESSAGES_SHORT);
    for row in &RECEIVED {
        for a in row {
            a.store(0, Ordering::Relaxed);
        }
    }
    let flags = EvqFlags::IPI | EvqFlags::INDIR | EvqFlags::SPAM_INDIR;
    let mut addrs = [0usize; QUEUES];
    for (i, &(op, ring_sz)) in SHAPES.iter().enumerate() {
        let (Some(q), Some(events), Some(ring)) = (
            rt.alloc::<EventQueueBig>(),
            rt.alloc_slice::<CeqEvent>(EVENTS),
            rt.alloc_slice::<AtomicI32>(ring_sz),
        ) else {
            return r.check(false, "out of process memory");
        };
        let kind = MboxKind::Ceq { op, events, ring };
        // Spread the queues' indirections over the vcores.
        let vcore = vc(i as u32 % p.nr_vcores());
        if setup::init_big_evq(q, kind, flags, vcore, rt).is_err() {
            return r.check(false, "CEQ set-up failed");
        }
        setup::set_evq_handler(&q.evq, Some(ceq_sink));
        q.evq.ev_udata.store(i, Ordering::Relaxed);
        addrs[i] = core::ptr::from_ref(q).expose_provenance();
        QUEUE[i].store(addrs[i], Ordering::Release);
    }

    let before = Snap::take(p.stats());
    let mut expected = [[0u64; EVENTS]; QUEUES];
    let seed = 0x2c0a_1e5c;
    let mut rng = Rng::new(seed);
    let mut send_errors = 0;
    common::begin(p, &DRAIN);
    // First a burst the consumers cannot keep up with, whatever the
    // machine's speed (under nested KVM a send is slow enough for them to
    // drain the small ring as fast as it fills): with every vcore
    // bulk-preempted, 16 distinct entries into the 4-slot ring, which must
    // overflow; the restarted vcores recover by scanning.
    let started = wait_until(2_000, || (0..p.nr_vcores()).all(|v| p.vcore_mapped(v)));
    sched::preempt(p, |_| true, false, || u64::MAX);
    let parked = wait_until(1_000, || {
        sched::pcores().all(|(_, c)| c.assigned().is_none_or(|_| c.is_parked()))
    });
    for (idx, total) in expected[2].iter_mut().enumerate().take(16) {
        *total += 1;
        let msg = EventMsg::new(idx as u16).with_arg2(1);
        if send_event(p, UserAddr::new(addrs[2]), &msg, VcoreId::ZERO).is_err() {
            send_errors += 1;
        }
    }
    p.restart_due(0, true);
    for _ in 0..messages {
        let qi = rng.below(QUEUES as u64) as usize;
        let idx = rng.below(EVENTS as u64) as usize;
        let value = match SHAPES[qi].0 {
            CeqOp::Add => 1 + rng.below(100) as u32,
            CeqOp::Or => 1 << rng.below(32),
        };
        match SHAPES[qi].0 {
            CeqOp::Add => expected[qi][idx] += u64::from(value),
            CeqOp::Or => expected[qi][idx] |= u64::from(value),
        }
        let msg = EventMsg::new(idx as u16).with_arg2(value);
        if send_event(p, UserAddr::new(addrs[qi]), &msg, VcoreId::ZERO).is_err() {
            send_errors += 1;
        }
    }
    let matches = |expected: &[[u64; EVENTS]; QUEUES]| {
        (0..QUEUES)
            .flat_map(|q| (0..EVENTS).map(move |e| (q, e)))
            .filter(|&(q, e)| RECEIVED[q][e].load(Ordering::Relaxed) == expected[q][e])
            .count()
    };
    let exact = wait_until(20_000, || matches(&expected) == QUEUES * EVENTS);
    common::end(p, r);
    let d = Snap::take(p.stats()).since(before);
    let sums = |q: usize| {
        RECEIVED[q]
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum::<u64>()
    };

    let _ = write!(
        r,
        "{messages} values (seed {seed:#x}; first a burst of 16 with every vcore preempted) into \
         CEQs ADD/ring 64, OR/ring 64, ADD/ring 4; \
         entries exact {}/{}; ADD totals {} and {}; OR entries with bits {}; \
         ring overflows {} (then recovered by scanning); INDIRs {}",
        matches(&expected),
        QUEUES * EVENTS,
        sums(0),
        sums(2),
        RECEIVED[1]
            .iter()
            .filter(|a| a.load(Ordering::Relaxed) != 0)
            .count(),
        d.ceq_overflows,
        d.indirs
    );
    r.check(started && parked, "the vcores did not start, or not park");
    r.check(send_errors == 0, "a send was dropped");
    r.check(exact, "a coalesced total differs from what was sent");
    r.check(d.ceq_overflows > 0, "the small ring never overflowed");
}
