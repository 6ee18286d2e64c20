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
use std::time::Instant;

use common::{MockProc, VCORES, vc};
use event_core::recv::HandlerTable;
use event_core::recv::setup::MboxKind;
use event_core::{VcoreId, send_event};
use vcpd_abi::{EventMsg, EventQueue, EventQueueBig, EvqFlags, UserAddr};

/// Sends per timed trial: under one UCQ page (127 messages), so that with
/// the consumer draining between trials the queue recycles its spare page
/// and no trial pays for page allocation (the test arena unmaps freed
/// pages, and their page faults would swamp a send).
const BATCH: usize = 120;

/// The process side of the bare UCQ.
struct Consumer<'a>(&'a MockProc);

impl ucq::ConsumerHost for Consumer<'_> {
    fn free_page(&self, page: usize) {
        self.0.arena.free_page(page);
    }
}

struct Mode {
    name: &'static str,
    setup: fn(&MockProc) -> UserAddr<EventQueue>,
}

fn big_ucq(p: &MockProc, flags: EvqFlags) -> UserAddr<EventQueue> {
    p.big_evq(MboxKind::Ucq, flags, 1)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // SEND_BENCH_ONLY=<k>: time only mode k (and the bare post), e.g. to
    // profile one mode under callgrind.
    let only: Option<usize> = std::env::var("SEND_BENCH_ONLY")
        .ok()
        .and_then(|v| v.parse().ok());
    let rounds = if quick { 300 } else { 3000 };
    let p = MockProc::new();
    p.record_ipis.store(false, Ordering::Relaxed);
    // Touch every page now: the host OS's first-touch page faults are not
    // part of a send (a kernel's user pages are already mapped).
    // (An atomic no-op write: it faults the page in and keeps what is there.)
    for page in p.arena.user_range().step_by(vcpd_abi::PAGE_SIZE) {
        if let Some(b) = UserAddr::<vcpd_abi::sync::AtomicU8>::new(page).check(&p.arena) {
            b.fetch_or(0, Ordering::Relaxed);
        }
    }
    let handlers = HandlerTable::new();
    let rx = p.receiver(&handlers);
    let bare_q = big_ucq(&p, EvqFlags::empty());
    let bare_ucq = bare_q
        .cast::<EventQueueBig>()
        .check(&p.arena)
        .unwrap()
        .ev_imbox
        .as_ucq();

    let modes = [
        Mode {
            name: "UCQ mailbox (no alert)",
            setup: |p| big_ucq(p, EvqFlags::empty()),
        },
        Mode {
            name: "VCPD mailbox + IPI",
            setup: |p| p.vcpd_evq(EvqFlags::IPI, 1),
        },
        Mode {
            name: "INDIR, throttled",
            setup: |p| big_ucq(p, EvqFlags::INDIR | EvqFlags::IPI),
        },
        Mode {
            name: "SPAM_PUBLIC fast path",
            setup: |p| p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 1),
        },
        Mode {
            name: "SPAM_PUBLIC locked fallback",
            setup: |p| p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 1),
        },
    ];
    let queues: Vec<UserAddr<EventQueue>> = modes.iter().map(|m| (m.setup)(&p)).collect();
    let stats = ucq::UcqStats::new();
    let bare_host = p.ucq_host();
    let drain_all = |p: &MockProc| {
        for v in 0..VCORES as u32 {
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
    // Each trial times a batch of bare posts and then a batch of the mode,
    // back to back: the ratio of the two is immune to the machine's drift.
    let mut bare = vec![];
    let mut samples: Vec<Vec<(f64, f64)>> = vec![vec![]; modes.len()];
    let bare_post = |i: &mut u32| {
        let t = Instant::now();
        for _ in 0..BATCH {
            ucq::send(
                bare_ucq,
                &EventMsg::new(9).with_arg2(*i),
                &bare_host,
                &stats,
            )
            .unwrap();
            *i += 1;
        }
        let ns = t.elapsed().as_nanos() as f64 / BATCH as f64;
        // SAFETY: the queue was set up by `big_evq` in the mock process's
        // arena, which `p` keeps alive.
        let consumer = unsafe { ucq::Consumer::new(bare_ucq) };
        while consumer.try_recv(&Consumer(&p)).is_some() {}
        ns
    };
    let mut seq = 0u32;
    for _ in 0..rounds {
        for k in 0..modes.len() {
            if only.is_some_and(|o| o != k) {
                continue;
            }
            let fallback = k == 4;
            if fallback {
                // WAITING, the chosen vcore not receptive: every send takes
                // the process lock and posts to the inactive head (vcore 2).
                p.arrange(&[], &[], &[2, 0, 1, 3]);
                p.set_can_rcv(1, false);
            }
            let base = bare_post(&mut seq);
            bare.push(base);
            let t = Instant::now();
            for i in 0..BATCH {
                send_event(
                    &p,
                    queues[k],
                    &EventMsg::new(9).with_arg2(i as u32),
                    VcoreId::ZERO,
                )
                .unwrap();
            }
            let ns = t.elapsed().as_nanos() as f64 / BATCH as f64;
            samples[k].push((ns, ns / base));
            if fallback {
                p.arrange(&[0, 1, 2, 3], &[], &[]);
                p.set_can_rcv(1, true);
            }
            drain_all(&p);
            if k == 2 {
                // Keep the INDIR queue throttled: acknowledge nothing, but
                // make sure the first INDIR of the run was sent.
                p.evq(queues[2])
                    .ev_alert_pending
                    .store(true, Ordering::Relaxed);
            }
        }
    }
    println!(
        "send_event cost per mode ({rounds} trials of {BATCH} sends, each after {BATCH} bare UCQ posts; medians, ratio spread p10-p90)"
    );
    println!(
        "{:<30} {:7.1} ns   1.00x",
        "bare UCQ post (ucq::send)",
        median(&mut bare)
    );
    println!(
        "BENCH\tsend\tbare UCQ post (ucq::send)\t{:.1}\tns/msg\t1.00\t-\t-",
        median(&mut bare)
    );
    for (m, s) in modes.iter().zip(&mut samples) {
        if s.is_empty() {
            continue;
        }
        let mut ns: Vec<f64> = s.iter().map(|x| x.0).collect();
        let mut ratio: Vec<f64> = s.iter().map(|x| x.1).collect();
        let (lo, hi) = spread(&mut ratio);
        let (n, r) = (median(&mut ns), median(&mut ratio));
        println!("{:<30} {n:7.1} ns   {r:.2}x  ({lo:.2}-{hi:.2})", m.name);
        println!(
            "BENCH\tsend\t{}\t{n:.1}\tns/msg\t{r:.2}\t-\tratio p10-p90 {lo:.2}-{hi:.2}",
            m.name
        );
    }
    println!("\n{}", p.stats());
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The 10th and 90th percentiles.
fn spread(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 10], v[(v.len() * 9) / 10])
}
