//! Which messages were sent and handled: every test message carries its id
//! in `ev_arg4` and its kind in its type.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};

use event_core::VcoreId;
use event_core::recv::{HandlerTable, Receiver};
use vcpd_abi::EventMsg;

use super::Sim;

/// What a test message promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Spammed (SPAM_PUBLIC): handled at least once.
    Spam = 1,
    /// A payload in a queue's UCQ: handled exactly once.
    Payload = 2,
    /// Spammed with VCORE_MUST_RUN: handled at least once, from the mailbox
    /// of a running vcore (never through preemption recovery).
    MustRun = 3,
}

impl Kind {
    /// The event type messages of this kind carry.
    pub const fn ev_type(self) -> u16 {
        20 + self as u16
    }

    fn from_type(t: u16) -> Option<Kind> {
        match t.checked_sub(20)? {
            1 => Some(Kind::Spam),
            2 => Some(Kind::Payload),
            3 => Some(Kind::MustRun),
            _ => None,
        }
    }
}

thread_local! {
    /// Set by vcore code while it drains another vcore's public mailbox.
    pub(super) static RECOVERING: Cell<bool> = const { Cell::new(false) };
}

/// Sent and handled counts per message id.
#[derive(Debug)]
pub struct Tracker {
    kind: Vec<AtomicU8>,
    handled: Vec<AtomicU32>,
    expected: AtomicUsize,
    distinct: AtomicUsize,
    /// Payloads handled more than once.
    pub duplicate_payloads: AtomicUsize,
    /// MUST_RUN messages found through preemption recovery.
    pub recovered_must_run: AtomicUsize,
    /// Messages handled (all copies).
    pub handled_total: AtomicUsize,
    /// Indirections handled (all copies).
    pub indirs_handled: AtomicUsize,
}

impl Tracker {
    /// Room for ids `0..n`.
    pub fn new(n: usize) -> Self {
        Self {
            kind: (0..n).map(|_| AtomicU8::new(0)).collect(),
            handled: (0..n).map(|_| AtomicU32::new(0)).collect(),
            expected: AtomicUsize::new(0),
            distinct: AtomicUsize::new(0),
            duplicate_payloads: AtomicUsize::new(0),
            recovered_must_run: AtomicUsize::new(0),
            handled_total: AtomicUsize::new(0),
            indirs_handled: AtomicUsize::new(0),
        }
    }

    /// Records that message `id` of `kind` is about to be sent and returns
    /// it. Call before sending (a handler may run before `send` returns).
    pub fn message(&self, id: usize, kind: Kind) -> EventMsg {
        self.kind[id].store(kind as u8, Ordering::Relaxed);
        self.expected.fetch_add(1, Ordering::AcqRel);
        EventMsg::new(kind.ev_type()).with_arg4(id as u64)
    }

    /// Forgets message `id` (its send was refused, so nothing is owed).
    pub fn unsend(&self, id: usize) {
        if self.kind[id].swap(0, Ordering::AcqRel) != 0 {
            self.expected.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn record(&self, msg: &EventMsg) {
        self.handled_total.fetch_add(1, Ordering::Relaxed);
        let Some(kind) = Kind::from_type(msg.ev_type) else {
            return;
        };
        let id = msg.ev_arg4 as usize;
        let Some(count) = self.handled.get(id) else {
            return;
        };
        let before = count.fetch_add(1, Ordering::AcqRel);
        if before == 0 {
            self.distinct.fetch_add(1, Ordering::AcqRel);
        } else if kind == Kind::Payload {
            self.duplicate_payloads.fetch_add(1, Ordering::Relaxed);
        }
        if kind == Kind::MustRun && RECOVERING.with(Cell::get) {
            self.recovered_must_run.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether every expected message was handled at least once.
    pub fn all_delivered(&self) -> bool {
        self.distinct.load(Ordering::Acquire) >= self.expected.load(Ordering::Acquire)
    }

    /// Expected messages, and how many of them were handled.
    pub fn progress(&self) -> (usize, usize) {
        (
            self.expected.load(Ordering::Acquire),
            self.distinct.load(Ordering::Acquire),
        )
    }

    /// Ids sent but never handled (for failure reports), at most `max`.
    pub fn missing(&self, max: usize) -> Vec<(usize, Kind)> {
        (0..self.kind.len())
            .filter_map(|id| {
                let k = Kind::from_type(20 + u16::from(self.kind[id].load(Ordering::Relaxed)))?;
                (self.handled[id].load(Ordering::Relaxed) == 0).then_some((id, k))
            })
            .take(max)
            .collect()
    }
}

fn on_message(rx: &Receiver<'_, Sim>, vcoreid: VcoreId, msg: &EventMsg, _: usize) {
    let sim = rx.runtime();
    sim.tracker.record(msg);
    // A preemption point in the middle of a drain: if the kernel preempted
    // this vcore, stop here until it is restarted (it may hold nothing but
    // the message it just took; others recover its public mailbox).
    if sim.is_preempted(vcoreid.get()) && msg.ev_arg4 % 100 < sim.cfg.handler_preempt_pct {
        super::vcore::park_while_preempted(sim, vcoreid.get());
    }
}

fn on_indir(rx: &Receiver<'_, Sim>, _: VcoreId, _: &EventMsg, _: usize) {
    rx.runtime()
        .tracker
        .indirs_handled
        .fetch_add(1, Ordering::Relaxed);
}

/// Registers the test handlers (after the built-in indirection handler).
pub(super) fn register(table: &HandlerTable<Sim>) {
    for k in [Kind::Spam, Kind::Payload, Kind::MustRun] {
        table
            .register(k.ev_type(), on_message, 0)
            .expect("handler slot");
    }
    table
        .register(vcpd_abi::EV_EVENT, on_indir, 0)
        .expect("handler slot");
}
