//! A hostile process scribbles on every shared field of a CEQ (array and
//! ring pointers, sizes, operation, indices, flags, entries, ring slots)
//! while kernel producers send. Producers must always return, never panic,
//! and never touch memory outside the process's range.

#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use ceq::CeqStats;
use proptest::prelude::*;
use vcpd_abi::arena::UserArena;
use vcpd_abi::sync::AtomicI32;
use vcpd_abi::ucq::PAGE_SIZE;
use vcpd_abi::{Ceq, CeqEvent, CeqOp, EventMsg, UserMemoryExt};

const ARENA_PAGES: usize = 8;

#[derive(Clone, Debug)]
enum Value {
    Raw(u64),
    Arena(usize),
    Small(u32),
}

#[derive(Clone, Debug)]
struct Scribble {
    offset: usize,
    byte_only: bool,
    value: Value,
}

fn scribble() -> impl Strategy<Value = Scribble> {
    let value = prop_oneof![
        any::<u64>().prop_map(Value::Raw),
        (0usize..(ARENA_PAGES + 2) * PAGE_SIZE).prop_map(Value::Arena),
        prop_oneof![0u32..4, Just(u32::MAX), Just(1 << 31), 0u32..100_000].prop_map(Value::Small),
    ];
    let offset = prop_oneof![0usize..72, 0usize..ARENA_PAGES * PAGE_SIZE];
    (offset, any::<bool>(), value).prop_map(|(offset, byte_only, value)| Scribble {
        offset,
        byte_only,
        value,
    })
}

fn attack(script: Vec<Scribble>, sends: usize) {
    let arena = Arc::new(UserArena::new(ARENA_PAGES * PAGE_SIZE));
    let start = arena.user_range().start;
    let ceq_addr = arena.alloc(size_of::<Ceq>(), 8).unwrap();
    assert_eq!(ceq_addr, start);
    let ceq = arena.user_ref::<Ceq>(ceq_addr).unwrap();
    let events = arena.alloc_slice::<CeqEvent>(40).unwrap();
    let ring = arena.alloc_slice::<AtomicI32>(8).unwrap();
    // SAFETY: arena memory that outlives the test; no consumer follows the
    // addresses the scribbler writes.
    unsafe { ceq::init(ceq, CeqOp::Add, events, ring) }.unwrap();
    let stats = Arc::new(CeqStats::new());
    let done = Arc::new(AtomicBool::new(false));
    // Producers start once the scribbler has made a first pass.
    let armed = Arc::new(AtomicBool::new(false));
    let scribbler = {
        let (arena, done, armed) = (arena.clone(), done.clone(), armed.clone());
        thread::spawn(move || {
            let mut rounds = 0u64;
            while !done.load(Ordering::Relaxed) {
                for s in &script {
                    let v = match s.value {
                        Value::Raw(r) => r,
                        Value::Arena(off) => (start + off) as u64,
                        Value::Small(n) => u64::from(n),
                    };
                    if s.byte_only {
                        arena.write_u8(start + s.offset, v as u8);
                    } else {
                        arena.write_u64(start + (s.offset & !7), v);
                    }
                }
                rounds += 1;
                armed.store(true, Ordering::Release);
                thread::yield_now();
            }
            rounds
        })
    };
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let (arena, stats, armed) = (arena.clone(), stats.clone(), armed.clone());
            thread::spawn(move || {
                while !armed.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                let ceq = arena.user_ref::<Ceq>(ceq_addr).unwrap();
                (0..sends)
                    .map(|i| {
                        let m = EventMsg::new(((i * 7 + p) % 50) as u16).with_arg2(1);
                        ceq::send(ceq, &m, &*arena, &stats).is_ok()
                    })
                    .count()
            })
        })
        .collect();
    let returned: usize = producers
        .into_iter()
        .map(|t| t.join().expect("a producer panicked"))
        .sum();
    done.store(true, Ordering::Relaxed);
    assert!(scribbler.join().unwrap() > 0);
    assert_eq!(returned, 2 * sends, "every send returned");
    let st = stats.snapshot();
    assert_eq!(st.coalesced + stats.dropped(), returned as u64);
    assert!(
        arena.guards_intact(),
        "a producer wrote outside the process"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn producers_survive_scribbling(script in prop::collection::vec(scribble(), 1..24)) {
        attack(script, 3000);
    }
}

/// Fixed worst cases: the ring points at the last word of the process, its
/// size is huge, the events array straddles the end, and `max_event_ever`
/// keeps being lowered (the bounded CAS loop must give up, not spin).
#[test]
fn producers_survive_edge_pointers_and_max_event_fights() {
    let end = ARENA_PAGES * PAGE_SIZE;
    let script = vec![
        Scribble {
            offset: 24,
            byte_only: false,
            value: Value::Arena(end - 4),
        },
        Scribble {
            offset: 32,
            byte_only: false,
            value: Value::Small(u32::MAX),
        },
        Scribble {
            offset: 16,
            byte_only: false,
            value: Value::Small(0),
        },
        Scribble {
            offset: 0,
            byte_only: false,
            value: Value::Arena(end - 40),
        },
        Scribble {
            offset: 8,
            byte_only: false,
            value: Value::Small(100_000),
        },
    ];
    attack(script, 20_000);
}
