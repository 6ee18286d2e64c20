//! Several producers and consumers on one CEQ whose ring is far too small,
//! so it overflows constantly: after producers stop and consumers drain,
//! the sum (ADD) or union (OR) received per index equals what was sent.

#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use ceq::{CeqStats, Spin};
use vcpd_abi::arena::UserArena;
use vcpd_abi::sync::AtomicI32;
use vcpd_abi::{Ceq, CeqEvent, CeqOp, EventMsg, UserMemoryExt};

const NR_EVENTS: usize = 61;
const SENDS_PER_PRODUCER: usize = 250_000;

fn value(op: CeqOp, p: usize, i: usize) -> u32 {
    match op {
        CeqOp::Add => (i % 7 + 1) as u32,
        CeqOp::Or => 1 << ((i * 3 + p) % 32),
    }
}

fn run(op: CeqOp, producers: usize, consumers: usize, ring_sz: usize) {
    let what = format!("ceq stress {op:?} {producers}p/{consumers}c ring {ring_sz}");
    let limit = std::time::Duration::from_secs(120);
    vcpd_abi::deadline::with_deadline(&what, limit, move || {
        run_inner(op, producers, consumers, ring_sz)
    });
}

fn run_inner(op: CeqOp, producers: usize, consumers: usize, ring_sz: usize) {
    let arena = Arc::new(UserArena::new(1 << 20));
    let ceq_addr = arena.alloc(size_of::<Ceq>(), 8).unwrap();
    let ceq = arena.user_ref::<Ceq>(ceq_addr).unwrap();
    let events = arena.alloc_slice::<CeqEvent>(NR_EVENTS).unwrap();
    let ring = arena.alloc_slice::<AtomicI32>(ring_sz).unwrap();
    // SAFETY: the queue and its arrays live in the arena (the simulated
    // process's own memory), which every thread keeps alive via its `Arc`.
    let consumer = unsafe { ceq::init(ceq, op, events, ring) }.unwrap();
    let stats = Arc::new(CeqStats::new());
    let producers_done = Arc::new(AtomicBool::new(false));

    let prod: Vec<_> = (0..producers)
        .map(|p| {
            let (arena, stats) = (arena.clone(), stats.clone());
            thread::spawn(move || {
                let ceq = arena.user_ref::<Ceq>(ceq_addr).unwrap();
                for i in 0..SENDS_PER_PRODUCER {
                    let idx = (i * 13 + p * 5) % NR_EVENTS;
                    let m = EventMsg::new(idx as u16).with_arg2(value(op, p, i));
                    ceq::send(ceq, &m, &*arena, &stats).expect("send");
                }
            })
        })
        .collect();
    let cons: Vec<_> = (0..consumers)
        .map(|_| {
            let (arena, done) = (arena.clone(), producers_done.clone());
            thread::spawn(move || {
                let ceq = arena.user_ref::<Ceq>(ceq_addr).unwrap();
                // SAFETY: as for `init`: the arena outlives this thread.
                let c = unsafe { ceq::Consumer::new(ceq) };
                let mut got = vec![0u64; NR_EVENTS];
                loop {
                    let finished = done.load(Ordering::Acquire);
                    match c.try_recv(&Spin) {
                        Some(m) => match op {
                            CeqOp::Add => got[usize::from(m.ev_type)] += m.ev_arg4,
                            CeqOp::Or => got[usize::from(m.ev_type)] |= m.ev_arg4,
                        },
                        None if finished && ceq::is_empty(ceq) => break,
                        None => thread::yield_now(),
                    }
                }
                got
            })
        })
        .collect();
    for t in prod {
        t.join().unwrap();
    }
    producers_done.store(true, Ordering::Release);
    let mut got = vec![0u64; NR_EVENTS];
    for t in cons {
        for (i, v) in t.join().unwrap().into_iter().enumerate() {
            match op {
                CeqOp::Add => got[i] += v,
                CeqOp::Or => got[i] |= v,
            }
        }
    }
    assert!(ceq::is_empty(ceq));
    assert!(consumer.try_recv(&Spin).is_none());

    let mut want = vec![0u64; NR_EVENTS];
    for p in 0..producers {
        for i in 0..SENDS_PER_PRODUCER {
            let idx = (i * 13 + p * 5) % NR_EVENTS;
            match op {
                CeqOp::Add => want[idx] += u64::from(value(op, p, i)),
                CeqOp::Or => want[idx] |= u64::from(value(op, p, i)),
            }
        }
    }
    assert_eq!(got, want, "coalesced values lost or invented");
    let st = stats.snapshot();
    assert_eq!(stats.dropped(), 0);
    assert!(
        st.overflows > 0,
        "the ring must overflow for this test to mean something: {st:?}"
    );
    assert!(arena.guards_intact());
}

#[test]
fn add_sums_exact_with_overflowing_ring() {
    run(CeqOp::Add, 3, 2, 4);
}

#[test]
fn or_unions_exact_with_overflowing_ring() {
    run(CeqOp::Or, 2, 3, 2);
}

#[test]
fn add_sums_exact_with_single_slot_ring_one_consumer() {
    run(CeqOp::Add, 2, 1, 1);
}
