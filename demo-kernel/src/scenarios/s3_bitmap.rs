//! Scenario 3, bitmap mailbox: every event type seen, on an MCP and on an
//! SCP.
//!
//! A big event queue with an event-bitmap mailbox. Each round the kernel
//! CPU sends every type `0..MAX_NR_EVENT` once, in a random order, and
//! waits until the vcores have seen all of them; a bitmap carries no
//! payload and coalesces repeats, so "sent once per round" makes the
//! expected result exact: each type received exactly once per round.
//! The queue drains through its own handler (`ev_handler`), since the
//! received "messages" are bare types (type 8, `EV_EVENT`, would otherwise
//! look like an indirection to the handler table).
//!
//! - On the app (MCP): flags `IPI | INDIR | SPAM_INDIR`, 100 rounds.
//! - On an SCP (one vcore, no lists; spam goes to vcore 0): flags
//!   `IPI | INDIR | WAKEUP`, and its vcore yields whenever it has nothing
//!   to do, so most rounds start with the SCP WAITING and the first send
//!   wakes it; 50 rounds.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use event_core::VcoreId;
use vcpd_abi::UserAddr;

use event_core::recv::setup::{self, MboxKind};
use event_core::send_event;
use vcpd_abi::{EventMbox, EventMsg, EventQueue, EventQueueBig, EvqFlags, MAX_NR_EVENT};

use super::common::{self, ModelSnap, Report, Rng, Snap, wait_until};
use crate::process::{self, Kind, Process, Spec};
use crate::vcore::{self, YIELD_WHEN_IDLE};

const ALL_TYPES: u64 = (1 << MAX_NR_EVENT) - 1;

/// Types seen this round (bit per type).
static SEEN: AtomicU64 = AtomicU64::new(0);
/// Types received, all rounds.
static RECEIVED: AtomicU64 = AtomicU64::new(0);
/// A type received twice in one round.
static REPEATS: AtomicU64 = AtomicU64::new(0);
static QUEUE: AtomicUsize = AtomicUsize::new(0);

extern "C" fn bitmap_sink(ev_q: &EventQueue) {
    let Some((p, _)) = vcore::current() else {
        return;
    };
    let Some(mbox) = common::own::<EventMbox>(ev_q.ev_mbox.load(Ordering::Acquire)) else {
        return;
    };
    let rx = p.receiver();
    while let Some(m) = rx.extract_one(mbox) {
        let bit = 1u64 << (m.ev_type % 64);
        RECEIVED.fetch_add(1, Ordering::Relaxed);
        if SEEN.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            REPEATS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Rounds on `p`; returns (rounds completed, sends dropped).
fn rounds(p: &'static Process, flags: EvqFlags, n: u32, seed: u64) -> Option<(u32, u64)> {
    let q = p.runtime().alloc::<EventQueueBig>()?;
    setup::init_big_evq(q, MboxKind::Bitmap, flags, VcoreId::ZERO, p.runtime()).ok()?;
    setup::set_evq_handler(&q.evq, Some(bitmap_sink));
    let q_addr = core::ptr::from_ref(q).expose_provenance();
    QUEUE.store(q_addr, Ordering::Release);
    let mut rng = Rng::new(seed);
    let mut dropped = 0;
    let mut done = 0;
    for _ in 0..n {
        SEEN.store(0, Ordering::Release);
        let mut order: [u16; MAX_NR_EVENT] = core::array::from_fn(|i| i as u16);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for t in order {
            if send_event(p, UserAddr::new(q_addr), &EventMsg::new(t), VcoreId::ZERO).is_err() {
                dropped += 1;
            }
        }
        if !wait_until(2_000, || SEEN.load(Ordering::Acquire) == ALL_TYPES) {
            break;
        }
        done += 1;
    }
    Some((done, dropped))
}

/// Runs the scenario.
pub(super) fn run(r: &mut Report) {
    RECEIVED.store(0, Ordering::Relaxed);
    REPEATS.store(0, Ordering::Relaxed);
    let app = super::app();
    let mcp_rounds = super::scaled(100, 20) as u32;
    let scp_rounds = super::scaled(50, 10) as u32;

    common::begin(app, &vcore::IDLE);
    let mcp = rounds(
        app,
        EvqFlags::IPI | EvqFlags::INDIR | EvqFlags::SPAM_INDIR,
        mcp_rounds,
        0xb17a,
    );
    common::end(app, r);

    let scp = process::create(
        super::SCP,
        Spec {
            name: "scp",
            kind: Kind::Cooperative,
            mcp: false,
            vcores: 1,
            pages: 512,
            guarded: false,
        },
    );
    let before = Snap::take(scp.stats());
    let model_before = ModelSnap::take(scp);
    common::begin(scp, &YIELD_WHEN_IDLE);
    let scp_result = rounds(
        scp,
        EvqFlags::IPI | EvqFlags::INDIR | EvqFlags::WAKEUP,
        scp_rounds,
        0x5c9,
    );
    common::end(scp, r);
    let d = Snap::take(scp.stats()).since(before);
    let m = ModelSnap::take(scp).since(model_before);

    let (mcp_done, mcp_drop) = mcp.unwrap_or((0, 0));
    let (scp_done, scp_drop) = scp_result.unwrap_or((0, 0));
    let expected = u64::from(mcp_done + scp_done) * MAX_NR_EVENT as u64;
    let _ = write!(
        r,
        "MCP: {mcp_done}/{mcp_rounds} rounds with all {MAX_NR_EVENT} types seen; \
         SCP: {scp_done}/{scp_rounds} rounds, {} yields into WAITING, {} WAKEUPs; \
         types received {} (expected {expected}), repeats within a round {}",
        m.waits,
        d.wakeups,
        RECEIVED.load(Ordering::Relaxed),
        REPEATS.load(Ordering::Relaxed)
    );
    r.check(mcp.is_some() && scp_result.is_some(), "queue set-up failed");
    r.check(mcp_drop + scp_drop == 0, "a send was dropped");
    r.check(mcp_done == mcp_rounds, "MCP: a type was never seen");
    r.check(scp_done == scp_rounds, "SCP: a type was never seen");
    r.check(
        RECEIVED.load(Ordering::Relaxed) == expected && REPEATS.load(Ordering::Relaxed) == 0,
        "a type was received more often than sent",
    );
    r.check(d.wakeups > 0, "the SCP was never woken by WAKEUP");
}
