//! A hostile process scribbles on every shared field of a UCQ (indices,
//! page pointers, spare page, counters, flags, page headers, containers)
//! while kernel producers send. The producers must always return, never
//! panic, and never touch memory outside the process's range.

#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use proptest::prelude::*;
use ucq::{ArenaHost, UcqStats, UserPageAlloc};
use vcpd_abi::ucq::PAGE_SIZE;
use vcpd_abi::{EventMsg, Slot, Ucq, UserMemoryExt};

/// Pages at the start of the arena the scribbler targets: the UCQ head and
/// the first pages the queue uses live there.
const TARGET_PAGES: usize = 6;

#[derive(Clone, Debug)]
enum Value {
    Raw(u64),
    /// An address inside (or just past) the arena: offset from its start.
    Arena(usize),
    /// A slot: arena page number and slot number.
    Slot(usize, usize),
    Small(u8),
}

#[derive(Clone, Debug)]
struct Scribble {
    /// Byte offset from the arena start (words are 8-aligned).
    offset: usize,
    byte_only: bool,
    value: Value,
}

fn scribble() -> impl Strategy<Value = Scribble> {
    let value = prop_oneof![
        any::<u64>().prop_map(Value::Raw),
        (0usize..(TARGET_PAGES + 64) * PAGE_SIZE).prop_map(Value::Arena),
        (0usize..TARGET_PAGES + 4, 0usize..4096).prop_map(|(p, s)| Value::Slot(p, s)),
        any::<u8>().prop_map(Value::Small),
    ];
    // Bias towards the UCQ head (first 64 bytes) and page headers.
    let offset = prop_oneof![
        0usize..64,
        (1usize..TARGET_PAGES).prop_map(|p| p * PAGE_SIZE),
        (1usize..TARGET_PAGES).prop_map(|p| p * PAGE_SIZE + 8),
        0usize..TARGET_PAGES * PAGE_SIZE,
    ];
    (offset, any::<bool>(), value).prop_map(|(offset, byte_only, value)| Scribble {
        offset,
        byte_only,
        value,
    })
}

fn resolve(v: &Value, start: usize) -> u64 {
    match *v {
        Value::Raw(r) => r,
        Value::Arena(off) => (start + off) as u64,
        Value::Slot(p, s) => Slot::new(start + p * PAGE_SIZE, s).0 as u64,
        Value::Small(b) => u64::from(b),
    }
}

fn attack(script: Vec<Scribble>, sends_per_producer: usize) {
    let host = Arc::new(ArenaHost::new(512 * PAGE_SIZE));
    let start = host.arena.user_range().start;
    let ucq_addr = host.arena.alloc(size_of::<Ucq>(), 64).unwrap();
    assert_eq!(ucq_addr, start);
    let q = host.user_ref::<Ucq>(ucq_addr).unwrap();
    let (a, b) = (
        host.alloc_user_page().unwrap(),
        host.alloc_user_page().unwrap(),
    );
    // SAFETY: two fresh arena pages; no consumer runs here (the scribbler
    // plays the process), so nothing follows the addresses it writes.
    unsafe { ucq::init(q, a, b) }.unwrap();
    let stats = Arc::new(UcqStats::new());
    let done = Arc::new(AtomicBool::new(false));
    // Producers start once the scribbler has made a first pass.
    let armed = Arc::new(AtomicBool::new(false));

    let scribbler = {
        let (host, done, armed) = (host.clone(), done.clone(), armed.clone());
        thread::spawn(move || {
            let mut rounds = 0u64;
            while !done.load(Ordering::Relaxed) {
                for s in &script {
                    let v = resolve(&s.value, start);
                    if s.byte_only {
                        host.arena.write_u8(start + s.offset, v as u8);
                    } else {
                        host.arena.write_u64(start + (s.offset & !7), v);
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
            let (host, stats, armed) = (host.clone(), stats.clone(), armed.clone());
            thread::spawn(move || {
                while !armed.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                let q = host.user_ref::<Ucq>(ucq_addr).unwrap();
                let mut results = (0usize, 0usize);
                for i in 0..sends_per_producer {
                    let m = EventMsg::new(3).with_arg1(p).with_arg4(i as u64);
                    match ucq::send(q, &m, &*host, &stats) {
                        Ok(()) => results.0 += 1,
                        Err(_) => results.1 += 1,
                    }
                }
                results
            })
        })
        .collect();
    let mut total = 0;
    for t in producers {
        let (ok, err) = t.join().expect("a producer panicked");
        total += ok + err;
    }
    done.store(true, Ordering::Relaxed);
    assert!(scribbler.join().unwrap() > 0);
    assert_eq!(total, 2 * sends_per_producer, "every send returned");
    let st = stats.snapshot();
    assert_eq!(
        st.posted + stats.dropped(),
        total as u64,
        "each send is posted or counted as dropped"
    );
    assert!(
        host.arena.guards_intact(),
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

/// The nastiest fixed script: the spare page points at the UCQ head itself,
/// the next-page link at the last user page, and prod_idx keeps being set to
/// the last slot before the 12-bit counter carries into the page bits.
#[test]
fn producers_survive_carry_and_self_links() {
    let script = vec![
        Scribble {
            offset: 8,
            byte_only: false,
            value: Value::Arena(0),
        },
        Scribble {
            offset: 0,
            byte_only: false,
            value: Value::Slot(1, 4095),
        },
        Scribble {
            offset: PAGE_SIZE,
            byte_only: false,
            value: Value::Arena(511 * PAGE_SIZE),
        },
        Scribble {
            offset: 32,
            byte_only: true,
            value: Value::Small(0xff),
        },
        Scribble {
            offset: 16,
            byte_only: false,
            value: Value::Raw(u64::MAX),
        },
    ];
    attack(script, 20_000);
}
