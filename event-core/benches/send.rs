//! Cost of `send_event` per delivery mode, as a ratio to a bare UCQ post,
//! measured in the same run on the mock process (no real IPIs: the host's
//! `ipi_vcore` only counts).
//!
//! `cargo bench -p event-core --bench send` (add `-- --quick` for a short run).
//! Only sends are timed; mailboxes are drained between timed batches.

#![allow(missing_docs)] // a benchmark binary
#![allow(clippy::print_stdout)] // it reports by printing

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{MockProc, VCORES};
use event_core::recv::setup::MboxKind;
use event_core::recv::{HandlerTable, Receiver};
use event_core::send_event;
use vcpd_abi::{EventMsg, EventQueue, EventQueueBig, EvqFlags, UserMemoryExt};

const BATCH: usize = 2048;

/// The process side of the bare UCQ.
struct Consumer<'a>(&'a MockProc);

impl ucq::ConsumerHost for Consumer<'_> {
    fn free_page(&self, page: usize) {
        self.0.arena.free_page(page);
    }
}

struct Mode {
    name: &'static str,
    setup: fn(&MockProc) -> usize,
    total: Duration,
}

fn big_ucq(p: &MockProc, flags: EvqFlags) -> usize {
    p.big_evq(MboxKind::Ucq, flags, 1)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 30 } else { 300 };
    let p = MockProc::new();
    p.record_ipis.store(false, Ordering::Relaxed);
    let handlers = HandlerTable::new();
    let rx = Receiver::new(p.pd(), &handlers, &p);
    let bare_q = big_ucq(&p, EvqFlags::empty());
    let bare_ucq = p
        .arena
        .user_ref::<EventQueueBig>(bare_q)
        .unwrap()
        .ev_imbox
        .as_ucq();

    let mut modes = [
        Mode {
            name: "UCQ mailbox (no alert)",
            setup: |p| big_ucq(p, EvqFlags::empty()),
            total: Duration::ZERO,
        },
        Mode {
            name: "VCPD mailbox + IPI",
            setup: |p| p.vcpd_evq(EvqFlags::IPI, 1),
            total: Duration::ZERO,
        },
        Mode {
            name: "INDIR, throttled",
            setup: |p| big_ucq(p, EvqFlags::INDIR | EvqFlags::IPI),
            total: Duration::ZERO,
        },
        Mode {
            name: "SPAM_PUBLIC fast path",
            setup: |p| p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 1),
            total: Duration::ZERO,
        },
        Mode {
            name: "SPAM_PUBLIC locked fallback",
            setup: |p| p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 1),
            total: Duration::ZERO,
        },
    ];
    let queues: Vec<usize> = modes.iter().map(|m| (m.setup)(&p)).collect();
    let mut bare = Duration::ZERO;
    let stats = ucq::UcqStats::new();
    let drain_all = |p: &MockProc| {
        for v in 0..VCORES as u32 {
            rx.handle_events(v);
        }
        for &q in &queues {
            if let Some(big) = p.arena.user_ref::<EventQueueBig>(q) {
                if big.ev_imbox.kind().is_ok() {
                    rx.handle_mbox(0, &big.ev_imbox);
                }
            }
        }
    };
    for _ in 0..rounds {
        let t = Instant::now();
        for i in 0..BATCH {
            ucq::send(bare_ucq, &EventMsg::new(9).with_arg2(i as u32), &p, &stats).unwrap();
        }
        bare += t.elapsed();
        // SAFETY: the queue was set up by `big_evq` in the test process's
        // arena, which `p` keeps alive.
        let bare = unsafe { ucq::Consumer::new(bare_ucq) };
        while bare.try_recv(&Consumer(&p)).is_some() {}
        drain_all(&p);
        for (k, mode) in modes.iter_mut().enumerate() {
            let fallback = k == 4;
            if fallback {
                // WAITING, the chosen vcore not receptive: every send takes
                // the process lock and posts to the inactive head (vcore 2).
                p.set_lists(&[], &[], &[2, 0, 1, 3]);
                p.waiting.store(true, Ordering::Relaxed);
                p.set_can_rcv(1, false);
            }
            let t = Instant::now();
            for i in 0..BATCH {
                send_event(&p, queues[k], &EventMsg::new(9).with_arg2(i as u32), 0).unwrap();
            }
            mode.total += t.elapsed();
            if fallback {
                p.waiting.store(false, Ordering::Relaxed);
                p.set_lists(&[0, 1, 2, 3], &[], &[]);
                p.set_can_rcv(1, true);
            }
            drain_all(&p);
            if k == 2 {
                // Keep the INDIR queue throttled: acknowledge nothing, but
                // make sure the first INDIR of the run was sent.
                let q = p.arena.user_ref::<EventQueue>(queues[2]).unwrap();
                q.ev_alert_pending.store(true, Ordering::Relaxed);
            }
        }
    }
    let per = |d: Duration| d.as_nanos() as f64 / (rounds * BATCH) as f64;
    let base = per(bare);
    println!(
        "send_event cost per mode ({rounds} rounds of {BATCH} sends; ratio to a bare UCQ post)"
    );
    println!(
        "{:<30} {:7.1} ns   1.00x",
        "bare UCQ post (ucq::send)", base
    );
    for m in &modes {
        println!(
            "{:<30} {:7.1} ns   {:.2}x",
            m.name,
            per(m.total),
            per(m.total) / base
        );
    }
    println!("\n{}", p.stats);
}
