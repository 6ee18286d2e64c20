//! CEQ post cost with and without coalescing, against a UCQ post, measured
//! in the same run and printed as ratios.
//!
//! `cargo bench -p ceq --bench ceq` (add `-- --quick` for a short run).
//! Only the producer side is timed; consumers drain between timed phases.

#![allow(missing_docs)] // a benchmark binary
#![allow(clippy::print_stdout)] // it reports by printing

use std::hint::black_box;
use std::time::{Duration, Instant};

use ceq::{CeqStats, Spin};
use ucq::{ArenaHost, UcqStats, UserPageAlloc};
use vcpd_abi::sync::AtomicI32;
use vcpd_abi::{Ceq, CeqEvent, CeqOp, EventMsg, Ucq, UserMemoryExt};

const BATCH: usize = 4096;

struct Bench {
    host: ArenaHost,
    ceq: usize,
    ucq: usize,
}

impl Bench {
    fn new() -> Self {
        let host = ArenaHost::new(64 << 20);
        let ceq = host.arena.alloc(size_of::<Ceq>(), 8).unwrap();
        let events = host.arena.alloc_slice::<CeqEvent>(BATCH).unwrap();
        let ring = host.arena.alloc_slice::<AtomicI32>(BATCH).unwrap();
        // SAFETY: arena memory, alive as long as the bench.
        unsafe { ceq::init(host.user_ref(ceq).unwrap(), CeqOp::Add, events, ring) }.unwrap();
        let ucq = host.arena.alloc(size_of::<Ucq>(), 64).unwrap();
        let (a, b) = (
            host.alloc_user_page().unwrap(),
            host.alloc_user_page().unwrap(),
        );
        // SAFETY: two fresh arena pages; the arena outlives the queue.
        unsafe { ucq::init(host.user_ref(ucq).unwrap(), a, b) }.unwrap();
        Self { host, ceq, ucq }
    }

    /// Times `BATCH` posts made by `post(i)`, then runs `drain` untimed.
    fn phase(&self, post: impl Fn(usize), drain: impl Fn()) -> Duration {
        let start = Instant::now();
        for i in 0..BATCH {
            post(i);
        }
        let t = start.elapsed();
        drain();
        t
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 50 } else { 500 };
    let b = Bench::new();
    let q: &Ceq = b.host.user_ref(b.ceq).unwrap();
    let u: &Ucq = b.host.user_ref(b.ucq).unwrap();
    let (cs, us) = (CeqStats::new(), UcqStats::new());
    // SAFETY: the queue's arrays live in the arena, alive until the end.
    let qc = unsafe { ceq::Consumer::new(q) };
    let drain_ceq = || while qc.try_recv(&Spin).is_some() {};
    // SAFETY: the queue and its pages live in the arena, alive until the end.
    let uc = unsafe { ucq::Consumer::new(u) };
    let drain_ucq = || while uc.try_recv(&b.host).is_some() {};

    let mut t = [Duration::ZERO; 3];
    for _ in 0..rounds {
        // Interleave the three so drift and noise hit them alike.
        t[0] += b.phase(
            |i| ucq::send(u, &EventMsg::new(1).with_arg2(i as u32), &b.host, &us).unwrap(),
            drain_ucq,
        );
        t[1] += b.phase(
            |i| {
                let m = EventMsg::new(7).with_arg2(i as u32);
                black_box(ceq::send(q, &m, &b.host.arena, &cs).unwrap());
            },
            drain_ceq,
        );
        t[2] += b.phase(
            |i| {
                let m = EventMsg::new(i as u16).with_arg2(1);
                black_box(ceq::send(q, &m, &b.host.arena, &cs).unwrap());
            },
            drain_ceq,
        );
    }
    let per = |d: Duration| d.as_nanos() as f64 / (rounds * BATCH) as f64;
    let (ucq_ns, coal_ns, ring_ns) = (per(t[0]), per(t[1]), per(t[2]));
    let st = cs.snapshot();
    println!("CEQ post cost ({rounds} rounds of {BATCH} posts, producer side only)");
    println!("ucq send                      {ucq_ns:7.1} ns/post   (1.00x)");
    println!(
        "ceq post, coalescing          {coal_ns:7.1} ns/post   ({:.2}x ucq)",
        coal_ns / ucq_ns
    );
    println!(
        "ceq post, new ring entry each {ring_ns:7.1} ns/post   ({:.2}x ucq)",
        ring_ns / ucq_ns
    );
    println!("coalescing / ring-posting = {:.2}", coal_ns / ring_ns);
    println!(
        "(ceq stats: {} ring posts, {} already posted, {} overflows)",
        st.ring_posts, st.already_posted, st.overflows
    );
}
