//! Many producers and consumers on one UCQ: every message is received
//! exactly once and each consumer sees each producer's messages in order,
//! across thousands of page switches.

#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use ucq::{ArenaHost, UcqStats, UserPageAlloc};
use vcpd_abi::ucq::{NR_MSG_PER_PAGE, PAGE_SIZE};
use vcpd_abi::{EventMsg, Ucq, UserMemoryExt};

const TOTAL: usize = 1_000_000;

fn run(producers: usize, consumers: usize) {
    run_with(producers, consumers, 1);
}

const LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// `batch` > 1: consumers drain with `try_recv_batch` of up to that many.
fn run_with(producers: usize, consumers: usize, batch: usize) {
    let what = format!("ucq stress {producers}p/{consumers}c batch {batch}");
    vcpd_abi::deadline::with_deadline(&what, LIMIT, move || run_inner(producers, consumers, batch));
}

fn run_inner(producers: usize, consumers: usize, batch: usize) {
    let host = Arc::new(ArenaHost::new(64 << 20));
    let ucq_addr = host.arena.alloc(size_of::<Ucq>(), 64).unwrap();
    let q = host.user_ref::<Ucq>(ucq_addr).unwrap();
    let (a, b) = (
        host.alloc_user_page().unwrap(),
        host.alloc_user_page().unwrap(),
    );
    // SAFETY: two fresh pages of the arena (the simulated process's own
    // memory), which every thread keeps alive through its `Arc`.
    let consumer = unsafe { ucq::init(q, a, b) }.unwrap();
    let stats = Arc::new(UcqStats::new());
    let received = Arc::new(AtomicUsize::new(0));
    let per_producer = TOTAL / producers;

    let prod: Vec<_> = (0..producers)
        .map(|p| {
            let (host, stats) = (host.clone(), stats.clone());
            thread::spawn(move || {
                let q = host.user_ref::<Ucq>(ucq_addr).unwrap();
                for seq in 0..per_producer {
                    let m = EventMsg::new(1).with_arg1(p as u16).with_arg4(seq as u64);
                    ucq::send(q, &m, &*host, &stats).expect("send");
                }
            })
        })
        .collect();
    let cons: Vec<_> = (0..consumers)
        .map(|_| {
            let (host, received) = (host.clone(), received.clone());
            thread::spawn(move || {
                let q = host.user_ref::<Ucq>(ucq_addr).unwrap();
                // SAFETY: as for `init` above: the arena outlives this thread.
                let cons = unsafe { ucq::Consumer::new(q) };
                let mut last = vec![None::<u64>; producers];
                let mut got = Vec::with_capacity(TOTAL / consumers * 2);
                let mut buf = vec![EventMsg::default(); batch];
                while received.load(Ordering::Relaxed) < producers * per_producer {
                    // batch == 1: the single-slot `try_recv` path.
                    let n = if batch == 1 {
                        usize::from(cons.try_recv(&*host).map(|m| buf[0] = m).is_some())
                    } else {
                        cons.try_recv_batch(&*host, &mut buf)
                    };
                    if n == 0 {
                        thread::yield_now();
                    }
                    for m in &buf[..n] {
                        received.fetch_add(1, Ordering::Relaxed);
                        let p = usize::from(m.ev_arg1);
                        assert!(
                            last[p].is_none_or(|l| l < m.ev_arg4),
                            "producer {p} reordered"
                        );
                        last[p] = Some(m.ev_arg4);
                        got.push((p, m.ev_arg4));
                    }
                }
                got
            })
        })
        .collect();
    for t in prod {
        t.join().unwrap();
    }
    let mut seen = vec![vec![false; per_producer]; producers];
    for t in cons {
        for (p, seq) in t.join().unwrap() {
            assert!(!seen[p][seq as usize], "duplicate ({p}, {seq})");
            seen[p][seq as usize] = true;
        }
    }
    assert!(seen.iter().flatten().all(|&s| s), "every message received");
    assert!(consumer.try_recv(&*host).is_none());
    let st = stats.snapshot();
    assert_eq!(st.posted as usize, producers * per_producer);
    assert_eq!(stats.dropped(), 0);
    assert!(
        st.page_switches as usize >= TOTAL / NR_MSG_PER_PAGE - 1,
        "{st:?}"
    );
    assert!(host.arena.guards_intact());
    // Recycling works: the queue never holds more than the pages in flight.
    assert!(host.arena.pages_out() * PAGE_SIZE < 64 << 20);
}

#[test]
fn one_producer_one_consumer() {
    run(1, 1);
}

#[test]
fn two_producers_two_consumers() {
    run(2, 2);
}

#[test]
fn four_producers_three_consumers() {
    run(4, 3);
}

#[test]
fn two_producers_two_batch_consumers() {
    run_with(2, 2, 16);
}
