//! Scenario 6, WAITING + WAKEUP: all vcores yield; an event with WAKEUP
//! restarts the process.
//!
//! The app's vcores yield whenever they have nothing to do, so after each
//! round every vcore has yielded and the last yield made the process
//! WAITING. The kernel CPU waits for that, notes the inactive list's head
//! (the vcore that will be woken first), and sends one event with WAKEUP,
//! alternating:
//! - `SPAM_PUBLIC | WAKEUP | IPI` (slim queue): with the process WAITING,
//!   the spam goes to the locked fallback, which posts to the inactive
//!   head and marks it `CAN_RCV_MSG`;
//! - a UCQ queue with `INDIR | SPAM_INDIR | WAKEUP | IPI`: the payload in
//!   the UCQ, the indirection spammed the same way.
//!
//! `ProcOps::wakeup` makes the process runnable and starts vcores from the
//! inactive head on free cores. Checked per round: the message arrives,
//! and it is handled by the vcore that was the inactive head (rule 4: that
//! is where the fallback put it).

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};
use event_core::VcoreId;
use vcpd_abi::UserAddr;

use event_core::recv::setup::{self, MboxKind};
use event_core::{SpamPath, send_event};
use vcpd_abi::{EventMsg, EventQueue, EventQueueBig, EvqFlags};

use super::common::{self, ModelSnap, Report, Snap, TALLY_A, wait_until};
use crate::process::sched;
use crate::process::{NONE, ProcState, VcoreList};
use crate::user::Recv;
use crate::user::program::YIELD_WHEN_IDLE;

const ROUNDS: u64 = 40;
const T_WAKE: u16 = 36;

/// The vcore that handled the last message (written in ring 3).
#[unsafe(link_section = ".user_data")]
static HANDLED_BY: AtomicU32 = AtomicU32::new(NONE);

fn on_wake(_: &Recv<'_>, v: VcoreId, msg: &EventMsg, _: usize) {
    let v = v.get();
    HANDLED_BY.store(v, Ordering::Release);
    TALLY_A.record(v, msg.ev_arg4);
}

/// Runs the scenario.
pub(super) fn run(r: &mut Report) {
    let p = super::app();
    let rt = p.runtime();
    common::reset_tallies();
    let (Some(spam_q), Some(ucq_q)) = (rt.alloc::<EventQueue>(), rt.alloc::<EventQueueBig>())
    else {
        return r.check(false, "out of process memory");
    };
    setup::init_evq(
        spam_q,
        UserAddr::NULL,
        EvqFlags::SPAM_PUBLIC | EvqFlags::WAKEUP | EvqFlags::IPI,
        VcoreId::ZERO,
    )
    .expect("a flagged queue sets up");
    let ucq_flags = EvqFlags::INDIR | EvqFlags::SPAM_INDIR | EvqFlags::WAKEUP | EvqFlags::IPI;
    if setup::init_big_evq(ucq_q, MboxKind::Ucq, ucq_flags, VcoreId::ZERO, rt).is_err() {
        return r.check(false, "queue set-up failed");
    }
    let spam_addr = core::ptr::from_ref(spam_q).expose_provenance();
    let ucq_addr = core::ptr::from_ref(ucq_q).expose_provenance();
    let reg = common::register(p, T_WAKE, on_wake, 0);
    if !reg.ok() {
        return r.check(false, "handler registration failed");
    }

    let before = Snap::take(p.stats());
    let model_before = ModelSnap::take(p);
    let mut waiting_rounds = 0;
    let mut delivered = 0;
    let mut by_head = 0;
    let mut send_errors = 0;
    common::begin(p, &YIELD_WHEN_IDLE);
    for seq in 0..ROUNDS {
        let idle = wait_until(2_000, || {
            p.state() == ProcState::Waiting && sched::cores_of(p.id()) == 0
        });
        if !idle {
            break;
        }
        waiting_rounds += 1;
        let head = p.head(VcoreList::Inactive);
        HANDLED_BY.store(NONE, Ordering::Release);
        let q = if seq % 2 == 0 { spam_addr } else { ucq_addr };
        send_errors += u64::from(
            send_event(
                p,
                UserAddr::new(q),
                &EventMsg::new(T_WAKE).with_arg4(seq),
                VcoreId::ZERO,
            )
            .is_err(),
        );
        if !wait_until(2_000, || TALLY_A.seen(seq)) {
            break;
        }
        delivered += 1;
        by_head += u64::from(head == Some(HANDLED_BY.load(Ordering::Acquire)));
    }
    common::end(p, r);
    let d = Snap::take(p.stats()).since(before);
    let m = ModelSnap::take(p).since(model_before);

    let _ = write!(
        r,
        "{ROUNDS} rounds: WAITING before the send {waiting_rounds}/{ROUNDS}, delivered \
         {delivered}/{ROUNDS}, handled by the inactive head {by_head}/{ROUNDS}; wakeups {} \
         (kernel {}), vcores started {}; spam via the locked fallback {}, duplicates {}",
        d.wakeups,
        m.wakeups,
        m.starts,
        d.spam(SpamPath::LockedFallback),
        TALLY_A.dups()
    );
    r.check(send_errors == 0, "a send was dropped");
    r.check(
        waiting_rounds == ROUNDS,
        "the process did not become WAITING",
    );
    r.check(delivered == ROUNDS, "a WAKEUP event was not delivered");
    r.check(
        d.wakeups >= ROUNDS,
        "a WAKEUP send did not wake the process",
    );
    r.check(
        by_head == ROUNDS,
        "a message was not handled by the inactive head",
    );
}
