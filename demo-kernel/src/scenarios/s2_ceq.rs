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
use crate::process::Rx;
use crate::vcore::{self, Step, VcoreProgram};

const MESSAGES: u64 = 30_000;
/// Values sent in short mode (still enough to overflow the 4-slot ring).
const MESSAGES_SHORT: u64 = 3_000;
const EVENTS: usize = 64;
const QUEUES: usize = 3;
/// (operation, ring size) of each queue.
const SHAPES: [(CeqOp, usize); QUEUES] = [(CeqOp::Add, 64), (CeqOp::Or, 64), (CeqOp::Add, 4)];

static QUEUE: [AtomicUsize; QUEUES] = [const { AtomicUsize::new(0) }; QUEUES];
static RECEIVED: [[AtomicU64; EVENTS]; QUEUES] =
    [const { [const { AtomicU64::new(0) }; EVENTS] }; QUEUES];

/// The queues' `ev_handler`: drain the CEQ, add up the values.
extern "C" fn ceq_sink(ev_q: &EventQueue) {
    let Some((p, _)) = vcore::current() else {
        return;
    };
    let qi = ev_q.ev_udata.load(Ordering::Relaxed);
    let Some(mbox) = common::own::<EventMbox>(ev_q.ev_mbox.load(Ordering::Acquire)) else {
        return;
    };
    if qi >= QUEUES {
        return;
    }
    let rx = p.receiver();
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

/// Drains any queue that is not empty.
struct Drain;

impl VcoreProgram for Drain {
    fn step(&self, rx: &Rx, v: u32) -> Step {
        let mut busy = false;
        for q in &QUEUE {
            if let Some(q) = common::own::<EventQueueBig>(q.load(Ordering::Acquire)) {
                if !rx.mbox_is_empty(&q.ev_imbox) {
                    rx.handle_event_q(vc(v), &q.evq);
                    busy = true;
                }
            }
        }
        if busy { Step::Busy } else { Step::Idle }
    }
}

static DRAIN: Drain = Drain;

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
        "{messages} values (seed {seed:#x}) into CEQs ADD/ring 64, OR/ring 64, ADD/ring 4; \
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
    r.check(send_errors == 0, "a send was dropped");
    r.check(exact, "a coalesced total differs from what was sent");
    r.check(d.ceq_overflows > 0, "the small ring never overflowed");
}
