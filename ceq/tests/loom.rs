//! Loom models of the CEQ: producers coalescing and posting into a ring too
//! small for them, consumers taking from the ring and running the overflow
//! recovery scan, all interleaved. After everyone stops and the queue is
//! drained, every index's sum equals what was sent (guarantee 2).
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ceq
//! --test loom --release`.

#![cfg(loom)]

use std::ptr::NonNull;

use ceq::{CeqStats, ConsumerHost};
use loom::sync::Arc;
use loom::thread;
use vcpd_abi::sync::AtomicI32;
use vcpd_abi::{Ceq, CeqEvent, CeqOp, EventMsg, UserMemory};

struct Env {
    ceq: Box<Ceq>,
    events: Box<[CeqEvent; 3]>,
    ring: Box<[AtomicI32; 1]>,
}

impl Env {
    fn new() -> Arc<Self> {
        let env = Self {
            ceq: Box::new(Ceq::default()),
            events: Box::new(std::array::from_fn(|_| CeqEvent::default())),
            ring: Box::new([AtomicI32::new(0)]),
        };
        // SAFETY: boxes the environment owns; every consumer borrows the
        // environment, so none outlives them.
        unsafe { ceq::init(&env.ceq, CeqOp::Add, &*env.events, &*env.ring) }.unwrap();
        Arc::new(env)
    }

    fn consumer(&self) -> ceq::Consumer<'_> {
        // SAFETY: as in `new`: the arrays are boxes alive for `&self`.
        unsafe { ceq::Consumer::new(&self.ceq) }
    }

    fn regions(&self) -> [(usize, usize); 3] {
        [
            (
                (&*self.ceq as *const Ceq).expose_provenance(),
                size_of::<Ceq>(),
            ),
            (
                self.events.as_ptr().expose_provenance(),
                size_of::<[CeqEvent; 3]>(),
            ),
            (
                self.ring.as_ptr().expose_provenance(),
                size_of::<[AtomicI32; 1]>(),
            ),
        ]
    }
}

// SAFETY: only addresses inside the boxes the environment owns are accepted.
unsafe impl UserMemory for Env {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        let ok = self
            .regions()
            .iter()
            .any(|&(b, l)| addr >= b && addr.checked_add(len).is_some_and(|e| e <= b + l));
        if ok {
            NonNull::new(std::ptr::with_exposed_provenance_mut(addr))
        } else {
            None
        }
    }
}

struct Yield;

impl ConsumerHost for Yield {
    fn relax(&self) {
        thread::yield_now();
    }
}

fn send(env: &Env, idx: u16, v: u32) {
    ceq::send(
        &env.ceq,
        &EventMsg::new(idx).with_arg2(v),
        env,
        &CeqStats::new(),
    )
    .unwrap();
}

fn take_all(env: &Env, sums: &mut [u64; 3]) {
    while let Some(m) = env.consumer().try_recv(&Yield) {
        sums[usize::from(m.ev_type)] += m.ev_arg4;
    }
}

/// One producer overflows a one-slot ring while a consumer takes from it
/// and recovers; the main thread drains what is left.
#[test]
fn produce_consume_and_recover() {
    loom::model(|| {
        let env = Env::new();
        let producer = {
            let env = env.clone();
            thread::spawn(move || {
                send(&env, 0, 1);
                send(&env, 1, 2);
                send(&env, 0, 4);
            })
        };
        let consumer = {
            let env = env.clone();
            thread::spawn(move || {
                let mut sums = [0; 3];
                take_all(&env, &mut sums);
                sums
            })
        };
        producer.join().unwrap();
        let mut sums = consumer.join().unwrap();
        take_all(&env, &mut sums);
        assert!(ceq::is_empty(&env.ceq));
        assert_eq!(sums, [5, 2, 0]);
    });
}

/// Two producers race for the single ring slot (one overflows) while a
/// consumer scans; coalesced values are never lost.
#[test]
fn two_producers_and_a_scanning_consumer() {
    loom::model(|| {
        let env = Env::new();
        let producers: Vec<_> = [(0u16, 1u32), (2, 8)]
            .into_iter()
            .map(|(idx, v)| {
                let env = env.clone();
                thread::spawn(move || send(&env, idx, v))
            })
            .collect();
        let mut sums = [0; 3];
        take_all(&env, &mut sums);
        for p in producers {
            p.join().unwrap();
        }
        take_all(&env, &mut sums);
        assert!(ceq::is_empty(&env.ceq));
        assert_eq!(sums, [1, 0, 8]);
    });
}

/// `is_empty` never claims "empty" while an overflowed event is pending:
/// after a producer finishes, a concurrent scan may be half way, but
/// whenever the queue reports empty, nothing is left to take.
#[test]
fn is_empty_is_never_premature() {
    loom::model(|| {
        let env = Env::new();
        send(&env, 1, 1); // fills the ring
        send(&env, 2, 1); // overflows
        let scanner = {
            let env = env.clone();
            thread::spawn(move || {
                let mut sums = [0; 3];
                take_all(&env, &mut sums);
                sums
            })
        };
        let mut mine = [0; 3];
        if ceq::is_empty(&env.ceq) {
            // Then the scanner must already have taken everything.
            let theirs = scanner.join().unwrap();
            assert_eq!(
                theirs,
                [0, 1, 1],
                "reported empty while events were pending"
            );
        } else {
            take_all(&env, &mut mine);
            let theirs = scanner.join().unwrap();
            take_all(&env, &mut mine);
            let total: Vec<_> = mine.iter().zip(theirs).map(|(a, b)| a + b).collect();
            assert_eq!(total, [0, 1, 1]);
        }
    });
}

/// Two consumers race one producer for the ring. A consumer must never
/// claim a ring slot no producer has reserved: if it could (reading
/// `prod_idx` before `cons_pvt_idx`, while the others consume past it), it
/// would wait for a producer that never comes once producers stop.
#[test]
fn consumers_never_claim_past_the_producers() {
    loom::model(|| {
        let env = Env::new();
        let producer = {
            let env = env.clone();
            thread::spawn(move || {
                send(&env, 0, 1);
                send(&env, 1, 2);
            })
        };
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let env = env.clone();
                thread::spawn(move || {
                    let mut sums = [0; 3];
                    take_all(&env, &mut sums);
                    sums
                })
            })
            .collect();
        producer.join().unwrap();
        let mut sums = [0; 3];
        for c in consumers {
            for (s, v) in sums.iter_mut().zip(c.join().unwrap()) {
                *s += v;
            }
        }
        take_all(&env, &mut sums);
        assert!(
            env.ceq.cons_pvt_idx.load(vcpd_abi::sync::Ordering::Relaxed)
                <= env.ceq.prod_idx.load(vcpd_abi::sync::Ordering::Relaxed),
            "a consumer claimed an unreserved slot"
        );
        assert_eq!(sums, [1, 2, 0]);
    });
}
