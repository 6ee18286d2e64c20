//! Scenario 9, wait-any: vcores act as threads that block on overlapping
//! sets of event queues, with deadlines, while the kernel CPU's tick and
//! the other vcores feed the queues.
//!
//! Four big UCQ queues, each with an event-core `WaitQueue` (wakeup
//! controller) attached, each alerting a different way:
//! - Q0 `INDIR | SPAM_INDIR | IPI`, fed by the kernel CPU: a
//!   `send_event_batch` of 8 per tick (one alert per batch);
//! - Q1 `INDIR | IPI` (the indirection goes to one vcore, no spam), fed by
//!   the kernel CPU: one `send_event` per tick;
//! - Q2 a bare `IPI`, *watched* (`HandlerTable::watch`: `handle_events`
//!   looks at it), fed by the kernel CPU every other tick (a batch of 4)
//!   and by the vcores;
//! - Q3 `INDIR | SPAM_INDIR`, fed by the vcores.
//!
//! Each vcore runs a thread that waits (`Receiver::wait_any`) on every
//! queue but one (vcore `v` skips queue `v % 4`), with a random deadline
//! of 50 µs to 3 ms, again and again; each fourth kernel message it takes
//! makes it send a message of its own to Q2 or Q3 (the `SEND_EVENT` system
//! call into the kernel's `send_event`). Parking runs the vcore's event
//! loop (handle events, recover preempted vcores' mailboxes, halt until an
//! interrupt; a thread waits inside a program step, where notifications
//! are off, so the loop polls `notif_pending` itself): the wakeup
//! controllers' `unpark` sets the thread's permit and asks the kernel to
//! wake its core (`WAKE_VCORE`). All of it runs in ring 3 (the
//! controllers, permits and counters live in the image's `.user_data`,
//! the clock is the process's TSC clock). Meanwhile the scheduler preempts vcores now and
//! then (restarting them 1..=2 ticks later). After the feed stops, the
//! threads keep waiting for 30 ms with nothing to receive, so deadlines
//! pass.
//!
//! Checked: every message (kernel and vcore ones, tagged) received exactly
//! once, from a queue the receiver waited on and that the message was sent
//! to; every timeout returned no earlier than its deadline (and some
//! fired); no registration left on any queue at the end.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use event_core::recv::setup::{self, MboxKind};
use event_core::recv::wait::{self, ThreadRuntime, ThreadToken, WaitError, WaitQueue};
use event_core::{VcoreId, send_event, send_event_batch};
use heapless::Vec;
use spin::Once;
use vcpd_abi::{EventMsg, EventQueueBig, EvqFlags, SharedEventMsg, UserAddr};

use super::common::{self, Pacer, Report, Rng, Snap, TALLY_A, TALLY_B, wait_until};
use crate::process::sched::{self, Chaos};
use crate::process::{MAX_VCORES, vc};
use crate::user::program::{self, Step, VcoreProgram};
use crate::user::{Rx, runtime, syscall};

const QUEUES: usize = 4;
/// The kernel feeds at least this many messages...
const KERNEL_MIN: u64 = 3_000;
/// ...for at least this long (and at most `MAX_MS`).
const MIN_MS: u64 = 300;
const MAX_MS: u64 = 3_000;
/// Waiting with nothing to receive, after the feed.
const QUIET_MS: u64 = 30;
const T_WAIT: u16 = 38;
/// `ev_arg1`: who sent it.
const FROM_KERNEL: u16 = 0;
const FROM_VCORE: u16 = 1;

/// The queues' wakeup controllers (their queues are in the app's memory).
#[unsafe(link_section = ".user_data")]
static CTL: [Once<WaitQueue<'static>>; QUEUES] = [const { Once::new() }; QUEUES];
/// The threads run (set while the scenario feeds and drains).
#[unsafe(link_section = ".user_data")]
static RUNNING: AtomicBool = AtomicBool::new(false);
/// Per vcore: its thread's park permit, and its PRNG state.
#[unsafe(link_section = ".user_data")]
static PERMITS: [AtomicBool; MAX_VCORES] = [const { AtomicBool::new(false) }; MAX_VCORES];
#[unsafe(link_section = ".user_data")]
static SEEDS: [AtomicU64; MAX_VCORES] = [const { AtomicU64::new(0) }; MAX_VCORES];
/// Messages the vcores reserved a tag for, and finished sending.
#[unsafe(link_section = ".user_data")]
static VC_RESERVED: AtomicU64 = AtomicU64::new(0);
#[unsafe(link_section = ".user_data")]
static VC_SENT: AtomicU64 = AtomicU64::new(0);
#[unsafe(link_section = ".user_data")]
static WAITS: AtomicU64 = AtomicU64::new(0);
#[unsafe(link_section = ".user_data")]
static TIMEOUTS: AtomicU64 = AtomicU64::new(0);
#[unsafe(link_section = ".user_data")]
static EARLY: AtomicU64 = AtomicU64::new(0);
/// Largest lateness of a timeout (ns past its deadline).
#[unsafe(link_section = ".user_data")]
static LATEST: AtomicU64 = AtomicU64::new(0);
#[unsafe(link_section = ".user_data")]
static WOKEN: AtomicU64 = AtomicU64::new(0);
#[unsafe(link_section = ".user_data")]
static MISROUTED: AtomicU64 = AtomicU64::new(0);
#[unsafe(link_section = ".user_data")]
static ERRORS: AtomicU64 = AtomicU64::new(0);

fn reset() {
    for a in [
        &VC_RESERVED,
        &VC_SENT,
        &WAITS,
        &TIMEOUTS,
        &EARLY,
        &LATEST,
        &WOKEN,
        &MISROUTED,
        &ERRORS,
    ] {
        a.store(0, Ordering::Relaxed);
    }
    for (v, s) in SEEDS.iter().enumerate() {
        s.store(0x5eed_0009 + v as u64 * 0x9e37_79b9, Ordering::Relaxed);
    }
    for p in &PERMITS {
        p.store(false, Ordering::Relaxed);
    }
}

/// Ring 3: the app's threads are its vcores: a token is `vcoreid + 1`;
/// parking runs the vcore's event loop until the permit is set, the
/// deadline passes or the vcore is told to stop.
struct VcoreThreads;

static THREADS: VcoreThreads = VcoreThreads;

impl ThreadRuntime for VcoreThreads {
    fn current(&self) -> ThreadToken {
        ThreadToken::new(runtime::vcore_id().index() + 1).expect("non-zero")
    }

    fn park(&self, deadline: Option<u64>) {
        let v = runtime::vcore_id();
        let rx = runtime::rx();
        let tls = runtime::tls();
        let pb = runtime::proc_block();
        let permit = &PERMITS[v.index()];
        let notif = &runtime::vcpd(v).notif_pending;
        loop {
            if permit.swap(false, Ordering::AcqRel) {
                WOKEN.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let stop = pb.finish.load(Ordering::Acquire) != 0;
            if stop || deadline.is_some_and(|d| runtime::now_ns() >= d) {
                return;
            }
            // The vcore's event loop (user/entry.rs), run while the thread
            // waits with notifications off: a restart's `vcore_online`,
            // pending events, preempted peers.
            if tls.online_pending.swap(0, Ordering::AcqRel) != 0 {
                rx.vcore_online(v);
                continue;
            }
            if notif.load(Ordering::Acquire) {
                rx.handle_events(v);
                continue;
            }
            if program::recover_preempted(&rx, v) > 0 {
                continue;
            }
            // Halt until an interrupt (an unpark's wake IPI, a notification,
            // the tick), unless the permit is set or an event pending: the
            // kernel checks both with interrupts off before it halts.
            syscall::halt_unless(core::ptr::from_ref(permit).expose_provenance());
        }
    }

    fn unpark(&self, t: ThreadToken) {
        let v = t.get() - 1;
        let Some(permit) = PERMITS.get(v) else { return };
        permit.store(true, Ordering::Release);
        if runtime::vcore_id().index() == v {
            return; // the thread's own vcore: it is awake
        }
        // Wake its core (a spurious wake-up if it moved or is busy).
        let _ = syscall::wake_vcore(v as u32);
    }

    fn now(&self) -> u64 {
        runtime::now_ns()
    }
}

/// Vcore `v`'s queues: all but `v % 4` (all of them with one vcore).
fn set_of(v: u32, n_vc: u32) -> Vec<usize, QUEUES> {
    (0..QUEUES)
        .filter(|&q| n_vc < 2 || q != v as usize % QUEUES)
        .collect()
}

fn queue_addr(q: usize) -> usize {
    CTL[q].get().map_or(0, |c| {
        core::ptr::from_ref(c.event_queue()).expose_provenance()
    })
}

/// Ring 3: the threads' loop body: one wait, then record what it returned.
struct Waiters;

static WAITERS: &dyn VcoreProgram = &Waiters;

impl VcoreProgram for Waiters {
    fn step(&self, rx: &Rx, v: u32) -> Step {
        if !RUNNING.load(Ordering::Acquire) {
            return Step::Idle;
        }
        let n_vc = runtime::proc_block().nr_vcores.load(Ordering::Relaxed);
        let set = set_of(v, n_vc);
        let ctls: Vec<&WaitQueue<'static>, QUEUES> =
            set.iter().filter_map(|&q| CTL[q].get()).collect();
        let mut rng = Rng::new(SEEDS[v as usize].load(Ordering::Relaxed));
        let wait_ns = if rng.below(8) == 0 {
            50_000
        } else {
            200_000 + rng.below(2_800_000)
        };
        let deadline = runtime::now_ns() + wait_ns;
        WAITS.fetch_add(1, Ordering::Relaxed);
        match rx.wait_any(&THREADS, &ctls, Some(deadline)) {
            Ok((i, msg)) => {
                if msg.ev_arg2 as usize != set[i] {
                    MISROUTED.fetch_add(1, Ordering::Relaxed);
                }
                if msg.ev_arg1 == FROM_VCORE {
                    TALLY_B.record(v, msg.ev_arg4);
                } else {
                    TALLY_A.record(v, msg.ev_arg4);
                    if msg.ev_arg4 % 4 == 0 {
                        produce(v, &mut rng);
                    }
                }
            }
            Err(WaitError::TimedOut) => {
                TIMEOUTS.fetch_add(1, Ordering::Relaxed);
                let now = runtime::now_ns();
                if now < deadline {
                    EARLY.fetch_add(1, Ordering::Relaxed);
                }
                LATEST.fetch_max(now.saturating_sub(deadline), Ordering::Relaxed);
            }
            Err(_) => {
                ERRORS.fetch_add(1, Ordering::Relaxed);
            }
        }
        SEEDS[v as usize].store(rng.bits(), Ordering::Relaxed);
        Step::Busy
    }
}

/// Ring 3: vcore `v` sends a message of its own to Q2 or Q3, through the
/// `SEND_EVENT` system call (the message in its own memory: its stack).
fn produce(v: u32, rng: &mut Rng) {
    let q = 2 + rng.below(2) as usize;
    let seq = VC_RESERVED.fetch_add(1, Ordering::Relaxed);
    let msg = SharedEventMsg::new();
    msg.write(
        &EventMsg::new(T_WAIT)
            .with_arg1(FROM_VCORE)
            .with_arg2(q as u32)
            .with_arg4(seq),
    );
    let sent = syscall::send_event(
        queue_addr(q),
        core::ptr::from_ref(&msg).expose_provenance(),
        v,
    );
    if sent.is_err() {
        ERRORS.fetch_add(1, Ordering::Relaxed);
    }
    VC_SENT.fetch_add(1, Ordering::Release);
}

/// Runs the scenario.
pub(super) fn run(r: &mut Report) {
    let p = super::app();
    let rt = p.runtime();
    let n_vc = p.nr_vcores();
    common::reset_tallies();
    reset();
    let flags = [
        EvqFlags::INDIR | EvqFlags::SPAM_INDIR | EvqFlags::IPI,
        EvqFlags::INDIR | EvqFlags::IPI,
        EvqFlags::IPI,
        EvqFlags::INDIR | EvqFlags::SPAM_INDIR,
    ];
    for (q, &f) in flags.iter().enumerate() {
        let Some(big) = rt.alloc::<EventQueueBig>() else {
            return r.check(false, "out of process memory");
        };
        let v = VcoreId::new(q as u32 % n_vc).expect("a vcore");
        if setup::init_big_evq(big, MboxKind::Ucq, f, v, rt).is_err() {
            return r.check(false, "queue set-up failed");
        }
        let ctl = CTL[q].call_once(|| WaitQueue::new(&big.evq, &THREADS));
        if !core::ptr::eq(ctl.event_queue(), &big.evq) || wait::attach(ctl).is_err() {
            return r.check(false, "wakeup controller set-up failed");
        }
        if !f.contains(EvqFlags::INDIR) && p.handlers().watch(&big.evq).is_err() {
            return r.check(false, "watch failed");
        }
    }

    let before = Snap::take(p.stats());
    RUNNING.store(true, Ordering::Release);
    common::begin(p, &WAITERS);
    sched::set_chaos(
        p.id(),
        Chaos {
            preempt_percent: 10,
            keep_one: n_vc > 1,
            max_park_ticks: 2,
            grant_percent: 0,
        },
    );
    // The feed: one round per tick of the kernel CPU.
    let mut sent = 0u64;
    let mut send_errors = 0u64;
    let mut batches = 0u64;
    let pacer = Pacer::new(MIN_MS, MAX_MS);
    let mut tick = 0u64;
    loop {
        let msg = |q: usize, seq: u64| {
            EventMsg::new(T_WAIT)
                .with_arg1(FROM_KERNEL)
                .with_arg2(q as u32)
                .with_arg4(seq)
        };
        let mut batch: Vec<EventMsg, 8> = Vec::new();
        for seq in sent..sent + 8 {
            let _ = batch.push(msg(0, seq));
        }
        send_errors +=
            u64::from(send_event_batch(p, UserAddr::new(queue_addr(0)), &batch, vc(0)).is_err());
        sent += 8;
        send_errors +=
            u64::from(send_event(p, UserAddr::new(queue_addr(1)), &msg(1, sent), vc(0)).is_err());
        sent += 1;
        if tick % 2 == 0 {
            batch.clear();
            for seq in sent..sent + 4 {
                let _ = batch.push(msg(2, seq));
            }
            send_errors += u64::from(
                send_event_batch(p, UserAddr::new(queue_addr(2)), &batch, vc(0)).is_err(),
            );
            sent += 4;
        }
        batches += 1 + u64::from(tick % 2 == 0);
        tick += 1;
        if !pacer.next(sent >= KERNEL_MIN) {
            break;
        }
    }
    let feed_ms = pacer.elapsed_ms();
    sched::clear_chaos();
    let kernel_all = wait_until(10_000, || TALLY_A.unique() >= sent);
    let vcore_all = wait_until(10_000, || {
        let reserved = VC_RESERVED.load(Ordering::Acquire);
        VC_SENT.load(Ordering::Acquire) == reserved && TALLY_B.unique() >= reserved
    });
    let timeouts_fed = TIMEOUTS.load(Ordering::Relaxed);
    wait_until(QUIET_MS, || false);
    RUNNING.store(false, Ordering::Release);
    common::end(p, r);
    let d = Snap::take(p.stats()).since(before);
    let leaked: usize = CTL
        .iter()
        .filter_map(Once::get)
        .map(WaitQueue::waiters)
        .sum();
    for c in CTL.iter().filter_map(Once::get) {
        p.handlers().unwatch(c.event_queue());
        wait::detach(c.event_queue());
    }
    let vc_sent = VC_RESERVED.load(Ordering::Relaxed);
    let r_ = |a: &AtomicU64| a.load(Ordering::Relaxed);

    let _ = write!(
        r,
        "{n_vc} vcore threads, each waiting on {} of {QUEUES} queues (INDIR|SPAM_INDIR, INDIR, \
         watched IPI, INDIR|SPAM_INDIR); fed {feed_ms} ms: kernel {sent} ({batches} batches), vcores \
         {vc_sent}; received exactly once {}/{sent} + {}/{vc_sent} (duplicates {}, misrouted {}); \
         waits {}, woken from park {}, timeouts {} ({} after the feed), before the deadline {}, \
         latest {} us after it; registrations left {leaked}; INDIRs {} throttled {}",
        set_of(0, n_vc).len(),
        TALLY_A.unique(),
        TALLY_B.unique(),
        TALLY_A.dups() + TALLY_B.dups(),
        r_(&MISROUTED),
        r_(&WAITS),
        r_(&WOKEN),
        r_(&TIMEOUTS),
        r_(&TIMEOUTS) - timeouts_fed,
        r_(&EARLY),
        r_(&LATEST) / 1000,
        d.indirs,
        d.throttled
    );
    r.check(
        send_errors == 0 && r_(&ERRORS) == 0,
        "a send or a wait failed",
    );
    r.check(
        kernel_all && vcore_all && TALLY_A.missing(sent) == 0 && TALLY_B.missing(vc_sent) == 0,
        "messages lost",
    );
    r.check(
        TALLY_A.dups() == 0 && TALLY_B.dups() == 0 && TALLY_A.bogus() == 0,
        "a message was received twice",
    );
    r.check(r_(&MISROUTED) == 0, "a message came from the wrong queue");
    r.check(r_(&EARLY) == 0, "a timeout fired before its deadline");
    r.check(r_(&TIMEOUTS) > 0, "no deadline passed");
    r.check(r_(&WOKEN) > 0, "no thread was woken from a park");
    r.check(vc_sent > 0, "the vcores sent nothing");
    r.check(leaked == 0, "a registration was left behind");
}
