//! End-to-end delivery on the simulated multicore kernel: guarantees 4
//! (spammed messages always reach a vcore that will check them) and 5
//! (throttled indirections never lose an alert), with 10^5 events per
//! scenario racing random yields, vcore starts, bulk preemptions and
//! WAITING/wakeup. A failure prints `SIM_SEED=<n>`; rerun with it set.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use event_core::VcoreId;
use event_core::recv::setup::{self, MboxKind};
use event_core::send_event;
use vcpd_abi::{EventQueue, EventQueueBig, EvqFlags, UserAddr};
use vcpd_tests::rng::{self, Rng};
use vcpd_tests::scenario::{self, Scenario, Storm};
use vcpd_tests::sim::{Config, Kind, Sim};

const EVENTS: usize = 100_000;
/// Sends between a sender's thread yields.
const PACE: usize = 2;

fn vc(v: u32) -> VcoreId {
    VcoreId::new(v).unwrap()
}

/// A slim queue delivering to VCPD mailboxes with `flags`.
fn vcpd_queue(sim: &Sim, flags: EvqFlags, vcore: u32) -> UserAddr<EventQueue> {
    let q = sim.arena.alloc_zeroed::<EventQueue>().expect("queue");
    setup::init_evq(q, UserAddr::NULL, flags, vc(vcore)).unwrap();
    UserAddr::new((q as *const EventQueue).addr())
}

/// A big queue with its own UCQ.
fn ucq_queue(sim: &Sim, flags: EvqFlags, vcore: u32) -> UserAddr<EventQueue> {
    let q = sim.arena.alloc_zeroed::<EventQueueBig>().expect("queue");
    setup::init_big_evq(q, MboxKind::Ucq, flags, vc(vcore), sim).expect("queue set-up");
    UserAddr::new((q as *const EventQueueBig).addr())
}

/// Spams with a mix of flag sets (IPI or not, WAKEUP or not, APPRO,
/// ROUNDROBIN), preferring a random vcore.
fn spam_public(cfg: Config, preempt: bool, storm: Storm, name: &'static str) -> Arc<Sim> {
    let s = Scenario {
        name,
        cfg,
        messages: EVENTS,
        senders: 2,
        pace: PACE,
        preempt,
        storm,
    };
    scenario::run(
        &s,
        Box::new(|sim: &Arc<Sim>| {
            let sp = EvqFlags::SPAM_PUBLIC;
            [
                sp | EvqFlags::IPI | EvqFlags::WAKEUP,
                sp | EvqFlags::WAKEUP | EvqFlags::VCORE_APPRO,
                sp | EvqFlags::ROUNDROBIN | EvqFlags::WAKEUP,
                sp | EvqFlags::IPI,
                sp | EvqFlags::VCORE_APPRO,
            ]
            .into_iter()
            .map(|f| vcpd_queue(sim, f, 0))
            .collect::<Vec<_>>()
        }),
        |sim, queues, rng: &mut Rng, id| {
            let q = queues[rng.below(queues.len() as u64) as usize];
            let msg = sim.tracker.message(id, Kind::Spam);
            let suggested = rng.below(u64::from(sim.cfg.vcores)) as u32;
            send_event(sim, q, &msg, vc(suggested)).expect("send");
        },
    )
}

#[test]
fn spam_public_survives_a_yield_storm() {
    let limit = std::time::Duration::from_secs(300);
    vcpd_abi::deadline::with_deadline("spam_public_survives_a_yield_storm", limit, || {
        for _ in 0..rng::rounds() {
            let cfg = Config {
                yield_pct: 6,
                request_pct: 6,
                ..Config::default()
            };
            let storm = Storm {
                yields: 200,
                ..Storm::default()
            };
            spam_public(cfg, false, storm, "spam_public_yield_storm");
        }
    });
}

#[test]
fn spam_public_survives_yields_and_bulk_preemption() {
    let limit = std::time::Duration::from_secs(300);
    vcpd_abi::deadline::with_deadline(
        "spam_public_survives_yields_and_bulk_preemption",
        limit,
        || {
            for _ in 0..rng::rounds() {
                let cfg = Config {
                    yield_pct: 4,
                    request_pct: 5,
                    ..Config::default()
                };
                let storm = Storm {
                    yields: 100,
                    preemptions: 40,
                    ..Storm::default()
                };
                spam_public(cfg, true, storm, "spam_public_yields_preemption");
            }
        },
    );
}

#[test]
fn spam_indir_never_loses_an_alert() {
    let limit = std::time::Duration::from_secs(300);
    vcpd_abi::deadline::with_deadline("spam_indir_never_loses_an_alert", limit, || {
        for _ in 0..rng::rounds() {
            let cfg = Config {
                yield_pct: 4,
                request_pct: 5,
                ..Config::default()
            };
            let s = Scenario {
                name: "spam_indir_payloads",
                cfg,
                messages: EVENTS,
                senders: 2,
                pace: PACE,
                preempt: true,
                storm: Storm {
                    yields: 100,
                    preemptions: 20,
                    ..Storm::default()
                },
            };
            let sim = scenario::run(
                &s,
                Box::new(|sim: &Arc<Sim>| {
                    let f = EvqFlags::INDIR | EvqFlags::SPAM_INDIR | EvqFlags::WAKEUP;
                    vec![ucq_queue(sim, f | EvqFlags::IPI, 1), ucq_queue(sim, f, 2)]
                }),
                |sim, queues, rng: &mut Rng, id| {
                    let q = queues[rng.below(2) as usize];
                    let msg = sim.tracker.message(id, Kind::Payload);
                    send_event(sim, q, &msg, VcoreId::ZERO).expect("send");
                },
            );
            // Guarantee 5: every payload was handled (checked by the run), each
            // indirection sent was handled, and throttling did suppress most.
            let sent = sim.stats().indirs_sent();
            let throttled = sim.stats().indirs_throttled();
            let handled = sim.tracker.indirs_handled.load(Ordering::Relaxed) as u64;
            assert!(
                sent >= 1 && handled >= sent,
                "indirections sent {sent}, handled {handled}"
            );
            assert!(
                throttled > sent,
                "throttling should suppress most indirections: sent {sent}, throttled {throttled}"
            );
            assert_eq!(
                sent + throttled,
                EVENTS as u64,
                "one INDIR decision per send"
            );
        }
    });
}

#[test]
fn must_run_messages_go_to_running_vcores() {
    let limit = std::time::Duration::from_secs(300);
    vcpd_abi::deadline::with_deadline("must_run_messages_go_to_running_vcores", limit, || {
        for _ in 0..rng::rounds() {
            // Vcore 0 never yields, so the process always has a running vcore; no
            // preemption, so any MUST_RUN message reached through recovery, or
            // parked on a vcore that never runs again, is a violation.
            let cfg = Config {
                yield_pct: 6,
                request_pct: 6,
                vcore0_stays: true,
                ..Config::default()
            };
            let s = Scenario {
                name: "must_run",
                cfg,
                messages: EVENTS,
                senders: 2,
                pace: PACE,
                preempt: false,
                storm: Storm {
                    yields: 200,
                    ..Storm::default()
                },
            };
            let sim = scenario::run(
                &s,
                Box::new(|sim: &Arc<Sim>| {
                    let f = EvqFlags::SPAM_PUBLIC | EvqFlags::VCORE_MUST_RUN;
                    vec![
                        vcpd_queue(sim, f | EvqFlags::IPI | EvqFlags::VCORE_APPRO, 0),
                        vcpd_queue(sim, f, 3),
                    ]
                }),
                |sim, queues, rng: &mut Rng, id| {
                    let q = queues[rng.below(2) as usize];
                    let msg = sim.tracker.message(id, Kind::MustRun);
                    send_event(sim, q, &msg, vc(rng.below(4) as u32)).expect("send");
                },
            );
            assert_eq!(sim.tracker.recovered_must_run.load(Ordering::Relaxed), 0);
            assert_eq!(
                sim.stats().spam(event_core::SpamPath::InactiveHead),
                0,
                "MUST_RUN never targets an inactive vcore"
            );
        }
    });
}

#[test]
fn waiting_process_is_woken_by_events() {
    let limit = std::time::Duration::from_secs(300);
    vcpd_abi::deadline::with_deadline("waiting_process_is_woken_by_events", limit, || {
        for _ in 0..rng::rounds() {
            // Vcores yield often and never ask for more: the process keeps going
            // WAITING, and only WAKEUP events start it again.
            let cfg = Config {
                yield_pct: 25,
                request_pct: 0,
                ..Config::default()
            };
            let s = Scenario {
                name: "waiting_wakeup",
                cfg,
                messages: EVENTS,
                senders: 2,
                pace: PACE,
                preempt: false,
                storm: Storm {
                    waits: 50,
                    ..Storm::default()
                },
            };
            let sim = scenario::run(
                &s,
                Box::new(|sim: &Arc<Sim>| {
                    vec![
                        vcpd_queue(
                            sim,
                            EvqFlags::SPAM_PUBLIC | EvqFlags::WAKEUP | EvqFlags::IPI,
                            0,
                        ),
                        ucq_queue(
                            sim,
                            EvqFlags::INDIR | EvqFlags::SPAM_INDIR | EvqFlags::WAKEUP,
                            1,
                        ),
                    ]
                }),
                |sim, queues, rng: &mut Rng, id| {
                    let k = rng.below(2) as usize;
                    let msg = sim
                        .tracker
                        .message(id, if k == 0 { Kind::Spam } else { Kind::Payload });
                    send_event(sim, queues[k], &msg, VcoreId::ZERO).expect("send");
                },
            );
            let waits = sim.counters.waits.load(Ordering::Relaxed);
            let wakeups = sim.stats().wakeups();
            assert!(
                waits > 10,
                "the process must go WAITING repeatedly ({waits})"
            );
            assert!(wakeups > 10, "WAKEUP events must restart it ({wakeups})");
            assert!(sim.stats().spam(event_core::SpamPath::LockedFallback) > 0);
        }
    });
}

#[test]
fn scp_gets_everything_on_vcore_zero() {
    let limit = std::time::Duration::from_secs(300);
    vcpd_abi::deadline::with_deadline("scp_gets_everything_on_vcore_zero", limit, || {
        for _ in 0..rng::rounds() {
            let cfg = Config {
                mcp: false,
                vcores: 1,
                yield_pct: 10,
                request_pct: 0,
                initially_online: 1,
                ..Config::default()
            };
            let s = Scenario {
                name: "scp",
                cfg,
                messages: EVENTS,
                senders: 2,
                pace: PACE,
                preempt: false,
                storm: Storm {
                    waits: 50,
                    ..Storm::default()
                },
            };
            let sim = scenario::run(
                &s,
                Box::new(|sim: &Arc<Sim>| {
                    vec![
                        vcpd_queue(sim, EvqFlags::SPAM_PUBLIC | EvqFlags::WAKEUP, 0),
                        vcpd_queue(
                            sim,
                            EvqFlags::IPI | EvqFlags::WAKEUP | EvqFlags::ROUNDROBIN,
                            0,
                        ),
                        ucq_queue(
                            sim,
                            EvqFlags::INDIR | EvqFlags::SPAM_INDIR | EvqFlags::WAKEUP,
                            0,
                        ),
                    ]
                }),
                |sim, queues, rng: &mut Rng, id| {
                    let k = rng.below(3) as usize;
                    let msg = sim
                        .tracker
                        .message(id, if k == 2 { Kind::Payload } else { Kind::Spam });
                    send_event(sim, queues[k], &msg, VcoreId::ZERO).expect("send");
                },
            );
            assert!(sim.stats().spam(event_core::SpamPath::Scp) > 0);
        }
    });
}
