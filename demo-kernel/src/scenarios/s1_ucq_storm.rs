//! Scenario 1, UCQ storm: 100 000 messages into one UCQ, consumed by every
//! vcore at once, each received exactly once.
//!
//! The queue is a big event queue with a UCQ mailbox and flags
//! `IPI | INDIR | SPAM_INDIR`: each send posts into the UCQ, and an
//! indirection (throttled: one outstanding at a time) tells a vcore to
//! drain it. All vcores drain it: the one the indirection reaches, and the
//! others whenever they wake (their tick) and find it non-empty; so up to
//! one consumer per vcore claims slots concurrently, across page switches.
//! The process spreads the indirections: a second `EV_EVENT` handler moves
//! the queue's `ev_vcore` to the next vcore after each one.
//!
//! Each message carries its sequence number in `ev_arg4`. Checked: every
//! number handled once (no loss, no duplicate), and each vcore saw its
//! share in increasing order (one producer, so per-consumer order must
//! follow the producer's), and every vcore took part.

use crate::process::vc;
use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};
use event_core::VcoreId;
use vcpd_abi::UserAddr;

use event_core::recv::setup::{self, MboxKind};
use event_core::send_event;
use vcpd_abi::{EV_EVENT, EventMsg, EventQueueBig, EvqFlags};

use super::common::{self, PerVcore, Report, Snap, TALLY_A, wait_until};
use crate::process::{Recv, Rx};
use crate::vcore::{Step, VcoreProgram};

/// Messages sent.
const N: u64 = 100_000;
/// Messages sent in short mode.
const N_SHORT: u64 = 5_000;
/// The event type of the storm's messages (a dynamic type).
const T_STORM: u16 = 30;
/// The sender pauses while this many messages are unhandled.
const WINDOW: u64 = 16_384;

/// User address of the storm queue.
static QUEUE: AtomicUsize = AtomicUsize::new(0);

fn queue() -> Option<&'static EventQueueBig> {
    common::own(QUEUE.load(Ordering::Acquire))
}

/// Drains the queue whenever it is non-empty.
struct Storm;

impl VcoreProgram for Storm {
    fn step(&self, rx: &Rx, v: u32) -> Step {
        match queue() {
            Some(q) if !rx.mbox_is_empty(&q.ev_imbox) => {
                rx.handle_event_q(vc(v), &q.evq);
                Step::Busy
            }
            _ => Step::Idle,
        }
    }
}

static STORM: Storm = Storm;

fn on_storm(_: &Recv<'_>, v: VcoreId, msg: &vcpd_abi::EventMsg, _: usize) {
    let v = v.get();
    TALLY_A.record(v, msg.ev_arg4);
}

/// After an indirection for the storm queue: point the queue at the next
/// vcore, so the next indirection (and its IPI) goes there.
fn rotate(_: &Recv<'_>, v: VcoreId, msg: &vcpd_abi::EventMsg, nr_vcores: usize) {
    let v = v.get();
    if msg.ev_arg3 == QUEUE.load(Ordering::Relaxed) {
        if let Some(q) = queue() {
            q.evq
                .ev_vcore
                .store((v + 1) % nr_vcores as u32, Ordering::Relaxed);
        }
    }
}

/// Runs the scenario.
pub(super) fn run(r: &mut Report) {
    let p = super::app();
    let n_vc = p.nr_vcores();
    let n = super::scaled(N, N_SHORT);
    common::reset_tallies();
    // Set-up, as the process's main thread would do it before starting
    // its vcores.
    let Some(q) = p.runtime().alloc::<EventQueueBig>() else {
        return r.check(false, "out of process memory");
    };
    let flags = EvqFlags::IPI | EvqFlags::INDIR | EvqFlags::SPAM_INDIR;
    if setup::init_big_evq(q, MboxKind::Ucq, flags, VcoreId::ZERO, p.runtime()).is_err() {
        return r.check(false, "queue set-up failed");
    }
    let q_addr = core::ptr::from_ref(q).expose_provenance();
    QUEUE.store(q_addr, Ordering::Release);
    let regs = [
        common::register(p, T_STORM, on_storm, 0),
        common::register(p, EV_EVENT, rotate, n_vc as usize),
    ];
    if !regs.iter().all(common::Registration::ok) {
        return r.check(false, "handler registration failed");
    }

    let before = Snap::take(p.stats());
    common::begin(p, &STORM);
    let mut send_errors = 0u64;
    let mut stalled = false;
    for seq in 0..n {
        if seq - TALLY_A.handled().min(seq) > WINDOW
            && !wait_until(10_000, || seq - TALLY_A.handled().min(seq) <= WINDOW / 2)
        {
            stalled = true;
            break;
        }
        let msg = EventMsg::new(T_STORM).with_arg4(seq);
        if send_event(p, UserAddr::new(q_addr), &msg, VcoreId::ZERO).is_err() {
            send_errors += 1;
        }
    }
    let all = wait_until(20_000, || TALLY_A.unique() >= n);
    common::end(p, r);
    let d = Snap::take(p.stats()).since(before);

    let _ = write!(
        r,
        "sent {n}, received {} exactly once (missing {}, duplicates {}, out of order {}); \
         per vcore {}; INDIRs {} sent, {} throttled; IPIs {}; UCQ page switches {}",
        TALLY_A.unique(),
        TALLY_A.missing(n),
        TALLY_A.dups(),
        TALLY_A.out_of_order(),
        PerVcore(&TALLY_A, n_vc),
        d.indirs,
        d.throttled,
        d.ipis,
        d.ucq_pages
    );
    r.check(!stalled, "the consumers stalled (window never drained)");
    r.check(send_errors == 0, "a send was dropped");
    r.check(all && TALLY_A.missing(n) == 0, "messages lost");
    r.check(
        TALLY_A.dups() == 0 && TALLY_A.bogus() == 0,
        "messages duplicated or corrupted",
    );
    r.check(
        TALLY_A.out_of_order() == 0,
        "a vcore saw messages out of order",
    );
    r.check(
        (0..n_vc).all(|v| TALLY_A.by_vcore(v) > 0),
        "a vcore consumed nothing",
    );
}
