//! Batch sends and wakeups, measured in one run on the mock process.
//!
//! 1. `send_event_batch` of 16 messages vs 16 `send_event`s to the same
//!    queue, per delivery mode; the ratio is batch / singles (target
//!    ≤ 0.5). The two are timed alternately, group by group, so drift
//!    and noise hit both alike. For INDIR queues the consumer acknowledges
//!    (clears `ev_alert_pending`) before every group: each group of
//!    singles sends one indirection and throttles 15, each batch sends
//!    one.
//! 2. Wakeup latency: from just before `send_event` (INDIR | SPAM_INDIR)
//!    to a thread parked in `wait_any` running again, including the
//!    vcore's `handle_events` (run by the sending thread right after the
//!    send, as the notified vcore would). Compared with a bare std
//!    `unpark` → `park` return on the same machine in the same run.
//!
//! `cargo bench -p event-core --bench wait` (add `-- --quick` for a short
//! run).

#![allow(missing_docs)] // a benchmark binary
#![allow(clippy::print_stdout)] // it reports by printing

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/threads.rs"]
mod threads;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{MockProc, VCORES, vc};
use event_core::recv::HandlerTable;
use event_core::recv::setup::MboxKind;
use event_core::recv::wait::{self, ThreadRuntime, WaitQueue};
use event_core::{VcoreId, send_event, send_event_batch};
use threads::STD_THREADS;
use vcpd_abi::{EventMsg, EventQueue, EventQueueBig, EvqFlags, UserAddr};

const GROUP: usize = 16;

struct Mode {
    name: &'static str,
    setup: fn(&MockProc) -> UserAddr<EventQueue>,
    /// Acknowledge the queue's indirection before each group.
    ack: bool,
    /// Nanoseconds per group.
    singles: Vec<u64>,
    batches: Vec<u64>,
}

fn big_ucq(p: &MockProc, flags: EvqFlags) -> UserAddr<EventQueue> {
    p.big_evq(MboxKind::Ucq, flags, 1)
}

fn batch_vs_singles(quick: bool) {
    let groups = if quick { 2_000 } else { 20_000 };
    let p = MockProc::new();
    p.record_ipis.store(false, Ordering::Relaxed);
    let handlers = HandlerTable::new();
    let rx = p.receiver(&handlers);
    let mut modes = [
        Mode {
            name: "UCQ mailbox, no alert",
            setup: |p| big_ucq(p, EvqFlags::empty()),
            ack: false,
            singles: Vec::new(),
            batches: Vec::new(),
        },
        Mode {
            name: "UCQ + INDIR | IPI",
            setup: |p| big_ucq(p, EvqFlags::INDIR | EvqFlags::IPI),
            ack: true,
            singles: Vec::new(),
            batches: Vec::new(),
        },
        Mode {
            name: "UCQ + INDIR | SPAM_INDIR",
            setup: |p| big_ucq(p, EvqFlags::INDIR | EvqFlags::SPAM_INDIR),
            ack: true,
            singles: Vec::new(),
            batches: Vec::new(),
        },
        Mode {
            name: "VCPD mailbox + IPI",
            setup: |p| p.vcpd_evq(EvqFlags::IPI, 1),
            ack: false,
            singles: Vec::new(),
            batches: Vec::new(),
        },
        Mode {
            name: "SPAM_PUBLIC",
            setup: |p| p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 1),
            ack: false,
            singles: Vec::new(),
            batches: Vec::new(),
        },
    ];
    let queues: Vec<UserAddr<EventQueue>> = modes.iter().map(|m| (m.setup)(&p)).collect();
    let drain = || {
        for v in 0..VCORES as u32 {
            p.pd().vcpd[v as usize]
                .notif_pending
                .store(true, Ordering::Relaxed);
            rx.handle_events(vc(v));
        }
        for &q in &queues {
            if let Some(big) = q.cast::<EventQueueBig>().check(&p.arena) {
                if big.ev_imbox.kind().is_ok() {
                    rx.handle_mbox(VcoreId::ZERO, &big.ev_imbox);
                }
            }
        }
    };
    let batch: Vec<EventMsg> = (0..GROUP as u32)
        .map(|i| EventMsg::new(9).with_arg2(i))
        .collect();
    for g in 0..groups {
        for (k, mode) in modes.iter_mut().enumerate() {
            let q = queues[k];
            let ack = || {
                if mode.ack {
                    p.evq(q).ev_alert_pending.store(false, Ordering::Relaxed);
                }
            };
            // Alternate which goes first.
            for first_batch in [g % 2 == 0, g % 2 != 0] {
                ack();
                if first_batch {
                    let t = Instant::now();
                    send_event_batch(&p, q, &batch, VcoreId::ZERO).unwrap();
                    mode.batches.push(t.elapsed().as_nanos() as u64);
                } else {
                    let t = Instant::now();
                    for m in &batch {
                        send_event(&p, q, m, VcoreId::ZERO).unwrap();
                    }
                    mode.singles.push(t.elapsed().as_nanos() as u64);
                }
            }
        }
        if g % 64 == 63 {
            drain();
        }
    }
    drain();
    // Medians of the per-group times: a group the machine interrupted
    // (this is a shared box) does not skew them as it would a sum.
    let per = |v: &[u64]| quantiles(v.to_vec()).0 as f64 / GROUP as f64;
    println!(
        "batch of {GROUP} vs {GROUP} single sends ({groups} groups each, alternated; median ns \
         per message, timer included)"
    );
    println!(
        "{:<28} {:>9} {:>9} {:>13}",
        "mode", "singles", "batch", "batch/singles"
    );
    for m in &modes {
        let (s, b) = (per(&m.singles), per(&m.batches));
        println!("{:<28} {:>9.1} {:>9.1} {:>12.2}x", m.name, s, b, b / s);
    }
    for m in &modes {
        let (s, b) = (per(&m.singles), per(&m.batches));
        println!(
            "BENCH\twait\t{}: 16 single sends\t{s:.1}\tns/msg\t1.00\t-\t-",
            m.name
        );
        println!(
            "BENCH\twait\t{}: batch of 16\t{b:.1}\tns/msg\t{:.2}\t-\t-",
            m.name,
            b / s
        );
    }
}

/// Median and 99th percentile, in ns.
fn quantiles(mut v: Vec<u64>) -> (u64, u64) {
    v.sort_unstable();
    let at = |q: usize| v[(v.len() * q / 100).min(v.len() - 1)];
    (at(50), at(99))
}

/// Waits until `f` holds, then a little more (so a thread that just
/// registered has time to park).
fn settle(f: impl Fn() -> bool) {
    while !f() {
        thread::yield_now();
    }
    thread::sleep(Duration::from_micros(200));
}

fn wakeup_latency(quick: bool) {
    let rounds = if quick { 300 } else { 2_000 };
    let p: &'static MockProc = Box::leak(Box::new(MockProc::new()));
    let handlers: &'static HandlerTable<MockProc> = Box::leak(Box::new(HandlerTable::new()));
    let q = p.big_evq(MboxKind::Ucq, EvqFlags::INDIR | EvqFlags::SPAM_INDIR, 1);
    let ctl: &'static WaitQueue<'static> =
        Box::leak(Box::new(WaitQueue::new(p.evq(q), &STD_THREADS)));
    wait::attach(ctl).unwrap();

    // The waiter: wait, stamp the time, repeat.
    static WOKE: AtomicU64 = AtomicU64::new(0);
    static DONE: AtomicBool = AtomicBool::new(false);
    let waiter = thread::spawn(move || {
        let rx = p.receiver(handlers);
        for _ in 0..rounds {
            rx.wait_any(&STD_THREADS, &[ctl], None).unwrap();
            WOKE.store(STD_THREADS.now(), Ordering::Release);
        }
    });
    let rx = p.receiver(handlers);
    let mut ours = Vec::with_capacity(rounds);
    for i in 0..rounds {
        WOKE.store(0, Ordering::Relaxed);
        settle(|| ctl.waiters() == 1);
        let t0 = STD_THREADS.now();
        send_event(p, q, &EventMsg::new(9).with_arg4(i as u64), VcoreId::ZERO).unwrap();
        for v in 0..VCORES as u32 {
            if p.notif_pending(v) {
                rx.handle_events(vc(v));
            }
        }
        let t1 = loop {
            match WOKE.load(Ordering::Acquire) {
                0 => std::hint::spin_loop(),
                t => break t,
            }
        };
        ours.push(t1.saturating_sub(t0));
    }
    waiter.join().unwrap();

    // The baseline: a bare unpark to a parked std thread.
    static PARKED: AtomicBool = AtomicBool::new(false);
    let parker = thread::spawn(move || {
        for _ in 0..rounds {
            WOKE.store(0, Ordering::Release);
            PARKED.store(true, Ordering::Release);
            while PARKED.load(Ordering::Acquire) {
                thread::park();
            }
            WOKE.store(STD_THREADS.now(), Ordering::Release);
            while !DONE.swap(false, Ordering::AcqRel) {
                thread::yield_now();
            }
        }
    });
    let mut bare = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        settle(|| PARKED.load(Ordering::Acquire));
        let t0 = STD_THREADS.now();
        PARKED.store(false, Ordering::Release);
        parker.thread().unpark();
        let t1 = loop {
            match WOKE.load(Ordering::Acquire) {
                0 => std::hint::spin_loop(),
                t => break t,
            }
        };
        bare.push(t1.saturating_sub(t0));
        DONE.store(true, Ordering::Release);
    }
    parker.join().unwrap();
    let (om, o99) = quantiles(ours);
    let (bm, b99) = quantiles(bare);
    println!("\nwakeup latency, send to a parked waiter running ({rounds} rounds; ns)");
    println!("{:<44} {:>9} {:>9}", "", "median", "p99");
    println!(
        "{:<44} {:>9} {:>9}",
        "send_event + handle_events → wait_any returns", om, o99
    );
    println!(
        "{:<44} {:>9} {:>9}",
        "bare std unpark → park returns", bm, b99
    );
    println!(
        "{:<44} {:>8.2}x {:>8.2}x",
        "ratio",
        om as f64 / bm.max(1) as f64,
        o99 as f64 / b99.max(1) as f64
    );
    println!("BENCH\twait\twakeup: bare std unpark to park\t{bm}\tns\t1.00\t-\tp99 {b99}");
    println!(
        "BENCH\twait\twakeup: send_event to wait_any returning\t{om}\tns\t{:.2}\t-\tp99 {o99}",
        om as f64 / bm.max(1) as f64
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    batch_vs_singles(quick);
    wakeup_latency(quick);
}
