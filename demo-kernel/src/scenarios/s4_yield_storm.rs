//! Scenario 4, yield storm: vcores yield and restart at random while
//! SPAM_PUBLIC and SPAM_INDIR events fly; nothing is lost.
//!
//! Two streams of tagged messages, interleaved, 60 pairs per tick for at
//! least 1.5 s and at least 20 000 pairs:
//! - A: a slim queue with `SPAM_PUBLIC | IPI | VCORE_APPRO`: the message
//!   itself is spammed into a public VCPD mailbox, preferring a random
//!   vcore (the kernel's suggestion, often one that has just yielded);
//! - B: a UCQ queue with `INDIR | SPAM_INDIR | IPI | VCORE_APPRO`: the
//!   payload goes into the UCQ, the indirection is spammed.
//!
//! Each vcore, every time it wakes, yields with odds 1 in 3 (the full
//! protocol: `prepare_to_yield`, then the kernel's yield, which refuses if
//! a message slipped in). The kernel's scheduler (chaos policy, CPU 0's
//! tick) starts the inactive head on a free core on every tick; when every
//! vcore has yielded the process is WAITING until then.
//! After the storm every vcore is started once more and drains.
//!
//! Checked: every message of both streams handled; B (a UCQ payload)
//! exactly once. A spammed message may legitimately be posted to more
//! than one mailbox (the spam algorithm retries with another vcore when
//! the first moved away; the seed says spammed messages must tolerate
//! spurious copies), so A is at-least-once and its duplicates are counted.

use crate::process::vc;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};
use event_core::VcoreId;
use vcpd_abi::UserAddr;

use event_core::recv::setup::{self, MboxKind};
use event_core::{SpamPath, send_event};
use vcpd_abi::{EventMsg, EventQueue, EventQueueBig, EvqFlags};

use super::common::{self, ModelSnap, Pacer, Report, Rng, Snap, TALLY_A, TALLY_B, wait_until};
use crate::process::{MAX_VCORES, Recv, Rx};
use crate::sched::{self, Chaos};
use crate::vcore::{Step, VcoreProgram};

/// At least this many messages per stream...
const N: u64 = 20_000;
/// ...sent in batches of this many per tick...
const BATCH: u64 = 60;
/// ...for at least this long (and at most `MAX_MS`, or `CAP` messages).
const MIN_MS: u64 = 1500;
const MAX_MS: u64 = 10_000;
/// `N` and `MIN_MS` in short mode.
const N_SHORT: u64 = 600;
const MIN_MS_SHORT: u64 = 300;
const CAP: u64 = 120_000;
const T_SPAM: u16 = 31;
const T_INDIR: u16 = 32;

/// Yields at random.
struct Storm;

static STORM_RNG: AtomicU64 = AtomicU64::new(0x1234_5678);

impl VcoreProgram for Storm {
    fn step(&self, _: &Rx, v: u32) -> Step {
        // A racy shared xorshift is fine: any sequence of numbers will do.
        let mut x = STORM_RNG.load(Ordering::Relaxed) ^ u64::from(v + 1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        STORM_RNG.store(x, Ordering::Relaxed);
        if x % 3 == 0 { Step::Yield } else { Step::Idle }
    }
}

static STORM: Storm = Storm;

fn on_spam(_: &Recv<'_>, v: VcoreId, msg: &EventMsg, _: usize) {
    let v = v.get();
    TALLY_A.record(v, msg.ev_arg4);
}

fn on_indir(_: &Recv<'_>, v: VcoreId, msg: &EventMsg, _: usize) {
    let v = v.get();
    TALLY_B.record(v, msg.ev_arg4);
}

/// Runs the scenario.
pub(super) fn run(r: &mut Report) {
    let p = super::app();
    let rt = p.runtime();
    let n_vc = u64::from(p.nr_vcores());
    common::reset_tallies();
    let (Some(spam_q), Some(indir_q)) = (rt.alloc::<EventQueue>(), rt.alloc::<EventQueueBig>())
    else {
        return r.check(false, "out of process memory");
    };
    setup::init_evq(
        spam_q,
        UserAddr::NULL,
        EvqFlags::SPAM_PUBLIC | EvqFlags::IPI | EvqFlags::VCORE_APPRO,
        VcoreId::ZERO,
    )
    .expect("a flagged queue sets up");
    let indir_flags =
        EvqFlags::INDIR | EvqFlags::SPAM_INDIR | EvqFlags::IPI | EvqFlags::VCORE_APPRO;
    if setup::init_big_evq(indir_q, MboxKind::Ucq, indir_flags, VcoreId::ZERO, rt).is_err() {
        return r.check(false, "queue set-up failed");
    }
    let spam_addr = core::ptr::from_ref(spam_q).expose_provenance();
    let indir_addr = core::ptr::from_ref(indir_q).expose_provenance();
    let regs = [
        common::register(p, T_SPAM, on_spam, 0),
        common::register(p, T_INDIR, on_indir, 0),
    ];
    if !regs.iter().all(common::Registration::ok) {
        return r.check(false, "handler registration failed");
    }

    let before = Snap::take(p.stats());
    let model_before = ModelSnap::take(p);
    let seed = 0x4e1d;
    let mut rng = Rng::new(seed);
    let mut send_errors = 0;
    common::begin(p, &STORM);
    sched::set_chaos(
        p.id(),
        Chaos {
            preempt_percent: 0,
            keep_one: true,
            max_park_ticks: 1,
            grant_percent: 100,
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
            send_errors +=
                u64::from(send_event(p, UserAddr::new(indir_addr), &b, vc(hint)).is_err());
        }
        sent += BATCH;
        if sent >= CAP || !pacer.next(sent >= n) {
            break;
        }
    }
    let storm_ms = pacer.elapsed_ms();
    // The storm is over: no more yields, every vcore back on a core to
    // drain its mailbox (a message may wait in an inactive vcore's public
    // mailbox: the spam chose it as the vcore that will run next).
    sched::clear_chaos();
    p.set_program(&crate::vcore::IDLE);
    p.grant(MAX_VCORES);
    let all = wait_until(20_000, || {
        TALLY_A.unique() >= sent && TALLY_B.unique() >= sent
    });
    common::end(p, r);
    let d = Snap::take(p.stats()).since(before);
    let m = ModelSnap::take(p).since(model_before);

    let _ = write!(
        r,
        "{sent} SPAM_PUBLIC + {sent} INDIR|SPAM_INDIR messages in {storm_ms} ms (seed \
         {seed:#x}) during {} yields ({} refused: notif_pending), {} starts, WAITING {} times; \
         SPAM_PUBLIC: {} of {sent} received ({} extra copies); UCQ payloads: {} exactly once \
         (duplicates {}); \
         spam paths: chosen {} online {} inactive-head {} locked-fallback {}",
        m.yields,
        m.refused,
        m.starts,
        m.waits,
        TALLY_A.unique(),
        TALLY_A.dups(),
        TALLY_B.unique(),
        TALLY_B.dups(),
        d.spam(SpamPath::ChosenVcore),
        d.spam(SpamPath::OnlineList),
        d.spam(SpamPath::InactiveHead),
        d.spam(SpamPath::LockedFallback)
    );
    r.check(send_errors == 0, "a send was dropped");
    r.check(
        all && TALLY_A.missing(sent) == 0 && TALLY_B.missing(sent) == 0,
        "messages lost",
    );
    r.check(TALLY_B.dups() == 0, "a UCQ payload was delivered twice");
    r.check(TALLY_A.bogus() + TALLY_B.bogus() == 0, "corrupted messages");
    r.check(m.yields > 0 && m.starts > 0, "no yield/restart happened");
}
