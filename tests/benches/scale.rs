//! The cost of the spam algorithm at scale: the simulated kernel with 64
//! vcores in a yield / preemption storm, two kernel threads sending
//! SPAM_PUBLIC messages. Prints sends per second and the share of spammed
//! messages that reached the locked fallback (the process lock).
//!
//! `cargo bench -p vcpd-tests --bench scale` (`-- --quick` for fewer
//! messages). Every message is still checked for delivery.

#![allow(missing_docs)] // a benchmark binary
#![allow(clippy::print_stdout)] // it reports by printing

use std::sync::Arc;
use std::time::Instant;

use event_core::recv::setup;
use event_core::{SpamPath, VcoreId, send_event};
use vcpd_abi::{EventQueue, EvqFlags, UserAddr};
use vcpd_tests::rng::Rng;
use vcpd_tests::scenario::{self, Scenario, Storm};
use vcpd_tests::sim::{Config, Kind, Sim};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let messages = if quick { 20_000 } else { 100_000 };
    let s = Scenario {
        name: "scale_64_vcores",
        cfg: Config {
            vcores: 64,
            initially_online: 64,
            yield_pct: 3,
            request_pct: 4,
            ..Config::default()
        },
        messages,
        senders: 2,
        pace: 4,
        preempt: true,
        storm: Storm::default(),
    };
    let start = Instant::now();
    let sim = scenario::run(
        &s,
        Box::new(|sim: &Arc<Sim>| {
            let q = sim.arena.alloc_zeroed::<EventQueue>().expect("queue");
            let flags = EvqFlags::SPAM_PUBLIC | EvqFlags::WAKEUP | EvqFlags::IPI;
            setup::init_evq(q, UserAddr::NULL, flags, VcoreId::ZERO).unwrap();
            UserAddr::<EventQueue>::new((q as *const EventQueue).addr())
        }),
        |sim, q, rng: &mut Rng, id| {
            let msg = sim.tracker.message(id, Kind::Spam);
            let v = VcoreId::new(rng.below(64) as u32).unwrap();
            send_event(sim, *q, &msg, v).expect("send");
        },
    );
    let secs = start.elapsed().as_secs_f64();
    let stats = sim.stats();
    let spams: u64 = SpamPath::ALL.iter().map(|&p| stats.spam(p)).sum();
    let fallback = stats.spam(SpamPath::LockedFallback);
    let c = &sim.counters;
    let r = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "scale: 64 vcores, {messages} SPAM_PUBLIC sends in {secs:.2} s = {:.0} sends/s; \
         locked fallback {fallback} of {spams} ({:.2}%); yields {} preemptions {} waits {} starts {}",
        messages as f64 / secs,
        100.0 * fallback as f64 / spams.max(1) as f64,
        r(&c.yields),
        r(&c.preemptions),
        r(&c.waits),
        r(&c.starts),
    );
    println!(
        "BENCH\tscale\t64 vcores, yield/preempt storm: sends per second\t{:.0}\tsends/s\t-\t-\t-",
        messages as f64 / secs
    );
    println!(
        "BENCH\tscale\t64 vcores: share of spams through the locked fallback\t{:.4}\tshare\t-\t-\t-",
        fallback as f64 / spams.max(1) as f64
    );
}
