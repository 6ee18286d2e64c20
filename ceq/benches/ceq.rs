//! CEQ post cost with and without coalescing, against a UCQ post, measured
//! in the same run and printed as ratios.
//!
//! `cargo bench -p ceq --bench ceq` (add `-- --quick` for a short run).
//! Only the producer side is timed; consumers drain between timed phases.
//!
//! Each round times one phase of [`BATCH`] posts of each contender, back to
//! back, in an order that rotates from round to round. A phase fits one
//! UCQ page with the consumer draining in between, so the UCQ recycles its
//! spare page and no phase pays for page allocation (the test arena unmaps
//! freed pages; their system calls and page faults would swamp a post).
//! Reported: each contender's median ns/post over rounds with the p10-p90
//! spread, and its ratio to the UCQ post: the median over rounds of the
//! ratio of its phase to the UCQ phase of the same round (immune to the
//! machine's drift). One `BENCH<TAB>ceq<TAB>case / contender<TAB>median
//! <TAB>ns/msg<TAB>ratio to the UCQ post<TAB>-<TAB>spread` line per row is
//! for `scripts/bench.sh`.

#![allow(missing_docs)] // a benchmark binary
#![allow(clippy::print_stdout)] // it reports by printing

use std::hint::black_box;
use std::time::Instant;

use ceq::{CeqStats, Spin};
use ucq::{ArenaHost, UcqStats, UserPageAlloc};
use vcpd_abi::sync::AtomicI32;
use vcpd_abi::{Ceq, CeqEvent, CeqOp, EventMsg, Ucq, UserMemoryExt};

/// Posts per timed phase: under one UCQ page (127 messages).
const BATCH: usize = 120;
/// CEQ events and ring entries.
const CEQ_SIZE: usize = 4096;

struct Bench {
    host: ArenaHost,
    ceq: usize,
    ucq: usize,
}

impl Bench {
    fn new() -> Self {
        let host = ArenaHost::new(16 << 20);
        // Touch every page now: the host OS's first-touch page faults are
        // not part of a post.
        for page in host.arena.user_range().step_by(vcpd_abi::PAGE_SIZE) {
            host.arena.write_u64(page, 0);
        }
        let ceq = host.arena.alloc(size_of::<Ceq>(), 8).unwrap();
        let events = host.arena.alloc_slice::<CeqEvent>(CEQ_SIZE).unwrap();
        let ring = host.arena.alloc_slice::<AtomicI32>(CEQ_SIZE).unwrap();
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
}

/// A contender's name, its post of message `i`, and the drain of its queue.
type Contender<'a> = (&'a str, &'a dyn Fn(usize), &'a dyn Fn());

/// Nanoseconds per post of a phase of `BATCH` posts made by `post(i)`.
fn phase(post: &dyn Fn(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..BATCH {
        post(i);
    }
    start.elapsed().as_nanos() as f64 / BATCH as f64
}

/// The value at quantile `f` of `v` (sorted here; linear interpolation).
fn quantile(v: &mut [f64], f: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let x = f * (v.len() - 1) as f64;
    let (i, frac) = (x.floor() as usize, x - x.floor());
    v[i] + (v[(i + 1).min(v.len() - 1)] - v[i]) * frac
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 3_000 } else { 30_000 };
    let b = Bench::new();
    let q: &Ceq = b.host.user_ref(b.ceq).unwrap();
    let u: &Ucq = b.host.user_ref(b.ucq).unwrap();
    let (cs, us) = (CeqStats::new(), UcqStats::new());
    // SAFETY: the queue's arrays live in the arena, alive until the end.
    let qc = unsafe { ceq::Consumer::new(q) };
    // SAFETY: the queue and its pages live in the arena, alive until the end.
    let uc = unsafe { ucq::Consumer::new(u) };

    let ucq_post = |i: usize| {
        ucq::send(u, &EventMsg::new(1).with_arg2(i as u32), &b.host, &us).unwrap();
    };
    let coalescing = |i: usize| {
        let m = EventMsg::new(7).with_arg2(i as u32);
        black_box(ceq::send(q, &m, &b.host.arena, &cs).unwrap());
    };
    let ring_entry = |i: usize| {
        let m = EventMsg::new(i as u16).with_arg2(1);
        black_box(ceq::send(q, &m, &b.host.arena, &cs).unwrap());
    };
    let drain_ucq = || while uc.try_recv(&b.host).is_some() {};
    let drain_ceq = || while qc.try_recv(&Spin).is_some() {};
    let contenders: [Contender<'_>; 3] = [
        ("ucq send", &ucq_post, &drain_ucq),
        ("ceq post, coalescing", &coalescing, &drain_ceq),
        ("ceq post, new ring entry each", &ring_entry, &drain_ceq),
    ];

    // ns[k][round]
    let mut ns = vec![Vec::with_capacity(rounds); contenders.len()];
    for r in 0..rounds {
        for i in 0..contenders.len() {
            let k = (i + r) % contenders.len();
            let (_, post, drain) = contenders[k];
            ns[k].push(phase(post));
            drain();
        }
    }
    let st = cs.snapshot();
    println!(
        "CEQ post cost ({rounds} rounds of {BATCH} posts per contender, producer side only; median ns/post, p10-p90 over rounds,"
    );
    println!("x ucq = median over rounds of the phase's time / the same round's UCQ phase)");
    println!(
        "{:<34} {:>8} {:>13} {:>7}",
        "", "ns/post", "p10-p90", "x ucq"
    );
    for (k, (name, _, _)) in contenders.iter().enumerate() {
        let mut ratio: Vec<f64> = ns[k].iter().zip(&ns[0]).map(|(a, b)| a / b).collect();
        let r = quantile(&mut ratio, 0.5);
        let v = &mut ns[k];
        let (med, lo, hi) = (quantile(v, 0.5), quantile(v, 0.1), quantile(v, 0.9));
        println!(
            "{name:<34} {med:8.1} {:>13} {r:7.2}",
            format!("{lo:.1}-{hi:.1}")
        );
        println!("BENCH\tceq\tpost / {name}\t{med:.1}\tns/msg\t{r:.2}\t-\tp10-p90 {lo:.1}-{hi:.1}");
    }
    println!(
        "(ceq stats: {} ring posts, {} already posted, {} overflows; ucq: {} page switches, {} pages allocated)",
        st.ring_posts,
        st.already_posted,
        st.overflows,
        us.snapshot().page_switches,
        us.snapshot().pages_allocated
    );
}
