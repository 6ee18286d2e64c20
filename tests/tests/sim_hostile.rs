//! Guarantee 6 on the simulated kernel: a hostile process scribbles random
//! values over its event queues, VCPDs, mailboxes, kernel_evts and UCQ
//! pages while kernel threads send 10^5 events with every flag
//! combination (and bulk preemptions reshuffle its vcores). The kernel
//! must never panic, never hang, never touch memory outside the process,
//! and must count what it dropped. A failure prints `SIM_SEED=<n>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use event_core::VcoreId;
use event_core::recv::setup::{self, MboxKind};
use event_core::{post_vcore_event, send_event, send_kernel_event, send_posix_signal};
use vcpd_abi::procdata::vcpd_offset;
use vcpd_abi::sync::AtomicI32;
use vcpd_abi::{
    CeqEvent, CeqOp, EventMsg, EventQueue, EventQueueBig, EvqFlags, MAX_NR_EVENT, Slot, UserAddr,
    Vcpd,
};
use vcpd_tests::rng::{self, Rng};
use vcpd_tests::sim::{Config, Sim};

const EVENTS: usize = 100_000;

/// A region of the process the scribbler attacks.
#[derive(Clone, Copy)]
struct Region {
    addr: usize,
    len: usize,
}

fn queues(sim: &Sim) -> Vec<usize> {
    let mut qs = vec![];
    let big = |kind: MboxKind<'_>, flags| {
        let q = sim.arena.alloc_zeroed::<EventQueueBig>().unwrap();
        setup::init_big_evq(q, kind, flags, VcoreId::new(1).unwrap(), sim).unwrap();
        q as *const EventQueueBig as usize
    };
    qs.push(big(MboxKind::Ucq, EvqFlags::INDIR | EvqFlags::IPI));
    qs.push(big(MboxKind::Bitmap, EvqFlags::IPI));
    let events = sim.arena.alloc_slice::<CeqEvent>(64).unwrap();
    let ring = sim.arena.alloc_slice::<AtomicI32>(8).unwrap();
    qs.push(big(
        MboxKind::Ceq {
            op: CeqOp::Add,
            events,
            ring,
        },
        EvqFlags::INDIR | EvqFlags::SPAM_INDIR,
    ));
    for flags in [
        EvqFlags::SPAM_PUBLIC | EvqFlags::WAKEUP,
        EvqFlags::VCORE_PRIVATE | EvqFlags::IPI,
        EvqFlags::ROUNDROBIN,
    ] {
        let q = sim.arena.alloc_zeroed::<EventQueue>().unwrap();
        setup::init_evq(q, UserAddr::NULL, flags, VcoreId::ZERO).unwrap();
        qs.push(q as *const EventQueue as usize);
    }
    qs
}

fn targets(sim: &Sim, qs: &[usize]) -> Vec<Region> {
    let mut r: Vec<Region> = qs
        .iter()
        .map(|&addr| Region {
            addr,
            len: size_of::<EventQueueBig>(),
        })
        .collect();
    let pd = sim.procdata() as *const _ as usize;
    r.push(Region {
        addr: pd,
        len: 8 * MAX_NR_EVENT,
    });
    for v in 0..sim.cfg.vcores as usize {
        // flags, rflags, notif bytes and both mailboxes.
        let base = pd + vcpd_offset(v) + std::mem::offset_of!(Vcpd, flags);
        r.push(Region {
            addr: base,
            len: size_of::<Vcpd>() - std::mem::offset_of!(Vcpd, flags),
        });
        // The UCQ page the public mailbox currently produces into.
        let page = Slot(
            sim.vcpd(v as u32)
                .ev_mbox_public
                .as_ucq()
                .prod_idx
                .load(Ordering::Relaxed),
        )
        .page();
        r.push(Region {
            addr: page,
            len: 64,
        });
    }
    r
}

fn value(rng: &mut Rng, sim: &Sim) -> u64 {
    let arena = sim.arena.user_range();
    match rng.below(6) {
        0 => rng.next_u64(),
        1 => (arena.start + rng.below((arena.end - arena.start) as u64 + 8192) as usize) as u64,
        2 => {
            Slot::new(
                arena.start + 4096 * rng.below(64) as usize,
                rng.below(4096) as usize,
            )
            .0 as u64
        }
        3 => rng.below(8),
        4 => u64::MAX,
        _ => (arena.end as u64).wrapping_sub(rng.below(64)),
    }
}

#[test]
fn hostile_process_cannot_hurt_the_kernel() {
    let limit = std::time::Duration::from_secs(300);
    vcpd_abi::deadline::with_deadline("hostile_process_cannot_hurt_the_kernel", limit, || {
        for _ in 0..rng::rounds().min(2) {
            attack();
        }
    });
}

fn attack() {
    let seed = rng::seed();
    eprintln!("scenario hostile: SIM_SEED={seed}");
    let mut rng = Rng::new(seed);
    let sim = Sim::new(Config::default(), 0);
    let qs = Arc::new(queues(&sim));
    let regions = targets(&sim, &qs);
    let stop = Arc::new(AtomicBool::new(false));
    // Senders start once a scribbler has written a first batch.
    let armed = Arc::new(AtomicBool::new(false));

    let scribblers: Vec<_> = (0..2)
        .map(|i| {
            let (sim, stop, regions, armed, mut rng) = (
                sim.clone(),
                stop.clone(),
                regions.clone(),
                armed.clone(),
                rng.fork(100 + i),
            );
            thread::spawn(move || {
                let mut writes = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let r = regions[rng.below(regions.len() as u64) as usize];
                    let off = rng.below(r.len as u64) as usize;
                    let v = value(&mut rng, &sim);
                    if rng.chance(30) {
                        sim.arena.write_u8(r.addr + off, v as u8);
                    } else {
                        sim.arena.write_u64((r.addr + off) & !7, v);
                    }
                    writes += 1;
                    if writes % 64 == 0 {
                        armed.store(true, Ordering::Release);
                        thread::yield_now();
                    }
                }
                writes
            })
        })
        .collect();
    let preemptor = {
        let (sim, stop, mut rng) = (sim.clone(), stop.clone(), rng.fork(7));
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_micros(rng.below(500)));
                match rng.below(3) {
                    0 => sim.bulk_preempt(),
                    1 => sim.restart(),
                    _ => {
                        sim.start_inactive_head();
                    }
                }
            }
        })
    };
    let start = Instant::now();
    let senders: Vec<_> = (0..2)
        .map(|s| {
            let (sim, qs, armed, mut rng) = (sim.clone(), qs.clone(), armed.clone(), rng.fork(s));
            thread::spawn(move || {
                while !armed.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                let arena = sim.arena.user_range();
                for i in 0..EVENTS / 2 {
                    let msg = EventMsg::new(rng.below(64) as u16)
                        .with_arg2(rng.next_u64() as u32)
                        .with_arg3(rng.next_u64() as usize);
                    let vcore = VcoreId::new(rng.below(8) as u32).unwrap();
                    // Results are ignored on purpose: drops are expected; what
                    // matters is that every call returns.
                    let _ = match rng.below(10) {
                        0 => send_kernel_event(&*sim, &msg, vcore),
                        1 => send_posix_signal(&*sim, rng.below(64) as u16),
                        2 => post_vcore_event(
                            &*sim,
                            &msg,
                            vcore,
                            EvqFlags::from_raw(rng.next_u64() as i32),
                        ),
                        3 => send_event(
                            &*sim,
                            UserAddr::new(
                                arena.start + rng.below((arena.end - arena.start) as u64) as usize,
                            ),
                            &msg,
                            vcore,
                        ),
                        4 => send_event(&*sim, UserAddr::new(rng.next_u64() as usize), &msg, vcore),
                        _ => send_event(
                            &*sim,
                            UserAddr::new(qs[rng.below(qs.len() as u64) as usize]),
                            &msg,
                            vcore,
                        ),
                    };
                    if i % 16 == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.join()
            .unwrap_or_else(|_| panic!("SIM_SEED={seed}: the kernel panicked"));
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let writes: u64 = scribblers.into_iter().map(|t| t.join().unwrap()).sum();
    preemptor.join().unwrap();
    eprintln!(
        "scenario hostile: {EVENTS} events in {elapsed:?} against {writes} hostile writes\n{}",
        sim.stats()
    );
    assert!(
        elapsed < Duration::from_secs(120),
        "SIM_SEED={seed}: sends took {elapsed:?}: a hang?"
    );
    assert!(
        sim.arena.guards_intact(),
        "SIM_SEED={seed}: the kernel wrote outside the process"
    );
    assert!(
        sim.stats().total_drops() > 0,
        "SIM_SEED={seed}: garbage must cost drops, and they must be counted"
    );
    assert!(
        sim.arena.rejected_checks() > 0,
        "SIM_SEED={seed}: bad pointers must have been refused"
    );
    assert!(
        writes > 1000,
        "the scribbler must actually race the senders"
    );
}
