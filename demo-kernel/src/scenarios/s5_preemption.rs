//! Scenario 5, preemption: the kernel bulk-preempts vcores mid-stream;
//! recovery drains their public mailboxes; nothing is lost; MUST_RUN
//! messages land only on running vcores.
//!
//! **Phase A** (10 messages of each stream per tick, at least 1.5 s and
//! 10 000 each). The scheduler (CPU 0's tick, which can strike in the
//! middle of a send on that CPU) bulk-preempts a random subset of the
//! online vcores on a quarter of the ticks, always leaving one running,
//! and restarts each 1..=3 ticks later. Preempted cores park; the running
//! vcores see `VC_PREEMPTED` in their peers' VCPDs and drain those public
//! mailboxes. Meanwhile the kernel CPU sends three tagged streams:
//! - A, `SPAM_PUBLIC | IPI | VCORE_APPRO` with a random suggested vcore:
//!   a preempted vcore keeps `CAN_RCV_MSG`, so messages land in preempted
//!   vcores' mailboxes and are recovered (at-least-once, copies counted);
//! - B, UCQ payloads with `INDIR | SPAM_INDIR | IPI` (exactly once);
//! - C, `SPAM_PUBLIC | VCORE_MUST_RUN | IPI | VCORE_APPRO`, suggesting a
//!   *preempted* vcore whenever there is one. Each C send runs with CPU
//!   0's interrupts off, so no preemption can happen during it (vcores do
//!   not yield here): the set of mapped vcores, snapshotted into the
//!   message (`ev_arg3`) just before the send, is exactly the set a
//!   MUST_RUN message may land on. The handler checks that the mailbox it
//!   found the message in (its own, or the preempted vcore's it is
//!   recovering) belongs to that set. Ignoring MUST_RUN would put these
//!   messages into the suggested, preempted vcore's mailbox: a failure.
//!
//! **Phase B.** Four times, the whole process is bulk-preempted
//! (RUNNABLE_M, every core parked) and 250 messages of stream A are sent:
//! none can be handled (checked: the count does not move), each waits in
//! a preempted vcore's mailbox, and all arrive once the vcores are
//! restarted (they check their mailboxes on restart: host rule 3).

use crate::process::vc;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};
use event_core::VcoreId;
use vcpd_abi::UserAddr;

use event_core::recv::setup::{self, MboxKind};
use event_core::send_event;
use vcpd_abi::{EventMsg, EventQueue, EventQueueBig, EvqFlags};
use x86_64::instructions::interrupts;

use super::common::{
    self, ModelSnap, Pacer, Report, Rng, Snap, TALLY_A, TALLY_B, TALLY_C, wait_until,
};
use crate::process::{Recv, VcoreList};
use crate::sched::{self, Chaos};
use crate::{time, vcore};

/// Phase A: at least this many messages per stream...
const N: u64 = 10_000;
/// ...sent in batches of this many per tick...
const BATCH: u64 = 10;
/// ...for at least this long (and at most `MAX_MS`, or `CAP` messages).
const MIN_MS: u64 = 1500;
const MAX_MS: u64 = 10_000;
const CAP: u64 = 100_000;
const MUST_EVERY: u64 = 3;
const ROUNDS_B: u64 = 4;
const PER_ROUND_B: u64 = 250;
/// `N`, `MIN_MS` and `PER_ROUND_B` in short mode.
const N_SHORT: u64 = 400;
const MIN_MS_SHORT: u64 = 500;
const PER_ROUND_B_SHORT: u64 = 50;
const T_SPAM: u16 = 33;
const T_INDIR: u16 = 34;
const T_MUST: u16 = 35;

static MUST_VIOLATIONS: AtomicU64 = AtomicU64::new(0);
static MUST_RECOVERED: AtomicU64 = AtomicU64::new(0);

fn on_spam(_: &Recv<'_>, v: VcoreId, msg: &EventMsg, _: usize) {
    let v = v.get();
    TALLY_A.record(v, msg.ev_arg4);
}

fn on_indir(_: &Recv<'_>, v: VcoreId, msg: &EventMsg, _: usize) {
    let v = v.get();
    TALLY_B.record(v, msg.ev_arg4);
}

fn on_must(_: &Recv<'_>, v: VcoreId, msg: &EventMsg, _: usize) {
    let v = v.get();
    let owner = vcore::mailbox_owner(v);
    if owner != v {
        MUST_RECOVERED.fetch_add(1, Ordering::Relaxed);
    }
    if msg.ev_arg3 & (1 << owner) == 0 {
        MUST_VIOLATIONS.fetch_add(1, Ordering::Relaxed);
    }
    TALLY_C.record(v, msg.ev_arg4);
}

/// Runs the scenario.
pub(super) fn run(r: &mut Report) {
    let p = super::app();
    let rt = p.runtime();
    let n_vc = u64::from(p.nr_vcores());
    common::reset_tallies();
    MUST_VIOLATIONS.store(0, Ordering::Relaxed);
    MUST_RECOVERED.store(0, Ordering::Relaxed);
    let (Some(spam_q), Some(must_q), Some(ucq_q)) = (
        rt.alloc::<EventQueue>(),
        rt.alloc::<EventQueue>(),
        rt.alloc::<EventQueueBig>(),
    ) else {
        return r.check(false, "out of process memory");
    };
    setup::init_evq(
        spam_q,
        UserAddr::NULL,
        EvqFlags::SPAM_PUBLIC | EvqFlags::IPI | EvqFlags::VCORE_APPRO,
        VcoreId::ZERO,
    )
    .expect("a flagged queue sets up");
    setup::init_evq(
        must_q,
        UserAddr::NULL,
        EvqFlags::SPAM_PUBLIC | EvqFlags::VCORE_MUST_RUN | EvqFlags::IPI | EvqFlags::VCORE_APPRO,
        VcoreId::ZERO,
    )
    .expect("a flagged queue sets up");
    let ucq_flags = EvqFlags::INDIR | EvqFlags::SPAM_INDIR | EvqFlags::IPI;
    if setup::init_big_evq(ucq_q, MboxKind::Ucq, ucq_flags, VcoreId::ZERO, rt).is_err() {
        return r.check(false, "queue set-up failed");
    }
    let addr = |q: &EventQueue| core::ptr::from_ref(q).expose_provenance();
    let (spam_addr, must_addr, ucq_addr) = (addr(spam_q), addr(must_q), addr(&ucq_q.evq));
    let regs = [
        common::register(p, T_SPAM, on_spam, 0),
        common::register(p, T_INDIR, on_indir, 0),
        common::register(p, T_MUST, on_must, 0),
    ];
    if !regs.iter().all(common::Registration::ok) {
        return r.check(false, "handler registration failed");
    }

    let before = Snap::take(p.stats());
    let model_before = ModelSnap::take(p);
    let seed = 0x9ee3;
    let mut rng = Rng::new(seed);
    let mut send_errors = 0u64;
    let mut must_sent = 0u64;
    let mut must_to_preempted = 0u64;
    common::begin(p, &vcore::IDLE);

    // Phase A.
    sched::set_chaos(
        p.id(),
        Chaos {
            preempt_percent: 25,
            keep_one: n_vc > 1,
            max_park_ticks: 3,
            grant_percent: 0,
        },
    );
    let pacer = Pacer::new(super::scaled(MIN_MS, MIN_MS_SHORT), MAX_MS);
    let n = super::scaled(N, N_SHORT);
    let mut sent = 0;
    loop {
        for seq in sent..sent + BATCH {
            let hint = rng.below(n_vc) as u32;
            let a = EventMsg::new(T_SPAM).with_arg4(seq);
            let b = EventMsg::new(T_INDIR).with_arg4(seq);
            send_errors +=
                u64::from(send_event(p, UserAddr::new(spam_addr), &a, vc(hint)).is_err());
            send_errors += u64::from(send_event(p, UserAddr::new(ucq_addr), &b, vc(hint)).is_err());
            if seq % MUST_EVERY == 0 {
                let sent_one = interrupts::without_interrupts(|| {
                    let mask = p.mapped_mask() as usize;
                    if mask == 0 {
                        // No vcore runs (one vcore, preempted): nowhere a
                        // MUST_RUN message could go. Not a case to check.
                        return None;
                    }
                    let hint = p.head(VcoreList::BulkPreempted).unwrap_or(hint);
                    must_to_preempted += u64::from(!p.vcore_mapped(hint));
                    let c = EventMsg::new(T_MUST).with_arg3(mask).with_arg4(must_sent);
                    Some(send_event(p, UserAddr::new(must_addr), &c, vc(hint)).is_err())
                });
                if let Some(err) = sent_one {
                    send_errors += u64::from(err);
                    must_sent += 1;
                }
            }
        }
        sent += BATCH;
        if sent >= CAP || !pacer.next(sent >= n) {
            break;
        }
    }
    let storm_ms = pacer.elapsed_ms();
    sched::clear_chaos();
    let phase_a = wait_until(20_000, || {
        TALLY_A.unique() >= sent && TALLY_B.unique() >= sent && TALLY_C.unique() >= must_sent
    });
    let model_a = ModelSnap::take(p).since(model_before);

    // Phase B.
    let mut frozen_ok = true;
    let mut parked_ok = true;
    let mut seq = sent;
    let per_round_b = super::scaled(PER_ROUND_B, PER_ROUND_B_SHORT);
    for _ in 0..ROUNDS_B {
        sched::preempt(p, |_| true, false, || u64::MAX);
        parked_ok &= wait_until(1_000, || {
            sched::pcores().all(|(_, c)| c.assigned().is_none_or(|_| c.is_parked()))
        });
        let handled = TALLY_A.handled();
        for _ in 0..per_round_b {
            let hint = rng.below(n_vc) as u32;
            let a = EventMsg::new(T_SPAM).with_arg4(seq);
            send_errors +=
                u64::from(send_event(p, UserAddr::new(spam_addr), &a, vc(hint)).is_err());
            seq += 1;
        }
        time::delay_us(2_000);
        frozen_ok &= TALLY_A.handled() == handled;
        p.restart_due(0, true);
        let target = seq;
        frozen_ok &= wait_until(5_000, || TALLY_A.unique() >= target);
    }
    common::end(p, r);
    let d = Snap::take(p.stats()).since(before);
    let total_a = seq;

    if n_vc == 1 {
        // Said, not hidden: phase B still holds and delivers; the checks
        // below that need a second vcore pass vacuously.
        let _ = write!(
            r,
            "one vcore (one AP): no running peer to recover from or to take MUST_RUN; "
        );
    }
    let _ = write!(
        r,
        "phase A ({storm_ms} ms): {sent} SPAM_PUBLIC, {sent} UCQ payloads, {must_sent} MUST_RUN \
         ({must_to_preempted} suggesting a preempted vcore) while {} vcore preemptions and {} restarts; {} messages \
         recovered from preempted vcores' mailboxes; MUST_RUN on a running vcore {}/{} \
         (violations {}); phase B: {ROUNDS_B} whole-process preemptions, {} messages held and \
         delivered after restart; SPAM_PUBLIC {} of {total_a} received ({} extra copies), UCQ \
         {} exactly once (duplicates {}); spam paths: chosen {} online {} bulk {} fallback {}",
        model_a.preemptions,
        model_a.restarts,
        model_a.recovered,
        TALLY_C.unique()
            - MUST_VIOLATIONS
                .load(Ordering::Relaxed)
                .min(TALLY_C.unique()),
        must_sent,
        MUST_VIOLATIONS.load(Ordering::Relaxed),
        ROUNDS_B * per_round_b,
        TALLY_A.unique(),
        TALLY_A.dups(),
        TALLY_B.unique(),
        TALLY_B.dups(),
        d.spam(event_core::SpamPath::ChosenVcore),
        d.spam(event_core::SpamPath::OnlineList),
        d.spam(event_core::SpamPath::BulkPreemptedList),
        d.spam(event_core::SpamPath::LockedFallback)
    );
    r.check(send_errors == 0, "a send was dropped");
    r.check(
        phase_a && TALLY_A.missing(total_a) == 0 && TALLY_B.missing(sent) == 0,
        "messages lost",
    );
    r.check(TALLY_C.missing(must_sent) == 0, "MUST_RUN messages lost");
    r.check(TALLY_B.dups() == 0, "a UCQ payload was delivered twice");
    r.check(
        MUST_VIOLATIONS.load(Ordering::Relaxed) == 0,
        "a MUST_RUN message landed on a vcore that was not running",
    );
    r.check(model_a.preemptions > 0, "no vcore was preempted");
    r.check(
        model_a.recovered > 0 || n_vc == 1,
        "no message was recovered from a preempted vcore",
    );
    r.check(parked_ok, "a preempted core did not park");
    r.check(
        frozen_ok,
        "phase B: a message was handled while every vcore was preempted, or not after restart",
    );
}
