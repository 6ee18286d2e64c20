//! Producers and consumers hammer one bitmap. Each producer owns some event
//! types and, for each, sets the bit and waits until a consumer has taken
//! it before setting it again: a lost bit (set, but hidden behind a clear
//! `check_bits`) would leave a producer waiting, which the deadline turns
//! into a failure.

#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use evbitmap::BitmapStats;
use vcpd_abi::{EvBitmap, MAX_NR_EVENT};

const ROUNDS: u64 = 20_000;

#[test]
fn bits_are_never_lost() {
    let limit = Duration::from_secs(120);
    vcpd_abi::deadline::with_deadline("bitmap stress", limit, bits_are_never_lost_inner);
}

fn bits_are_never_lost_inner() {
    let bm = Arc::new(EvBitmap::default());
    evbitmap::init(&bm);
    let received: Arc<Vec<AtomicU64>> =
        Arc::new((0..MAX_NR_EVENT).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(BitmapStats::new());
    // Types 0..12 share bytes across producers, so fetch_or/fetch_and race.
    let owned: Vec<Vec<u16>> = vec![vec![0, 3, 9, 49], vec![1, 8, 10], vec![2, 7, 11, 16]];
    let producers: Vec<_> = owned
        .into_iter()
        .map(|types| {
            let (bm, received, stats) = (bm.clone(), received.clone(), stats.clone());
            thread::spawn(move || {
                for round in 1..=ROUNDS {
                    for &t in &types {
                        evbitmap::send(&bm, t, &stats).unwrap();
                    }
                    let deadline = Instant::now() + Duration::from_secs(20);
                    for &t in &types {
                        while received[usize::from(t)].load(Ordering::Acquire) < round {
                            assert!(Instant::now() < deadline, "bit {t} lost in round {round}");
                            thread::yield_now();
                        }
                    }
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let (bm, received, stop) = (bm.clone(), received.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    match evbitmap::try_recv(&bm) {
                        Some(m) => {
                            received[usize::from(m.ev_type)].fetch_add(1, Ordering::Release);
                        }
                        None => thread::yield_now(),
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer failed");
    }
    stop.store(true, Ordering::Release);
    for c in consumers {
        c.join().unwrap();
    }
    for t in [0usize, 1, 2, 3, 7, 8, 9, 10, 11, 16, 49] {
        assert_eq!(
            received[t].load(Ordering::Relaxed),
            ROUNDS,
            "type {t} delivered once per set"
        );
    }
    assert_eq!(
        received
            .iter()
            .map(|r| r.load(Ordering::Relaxed))
            .sum::<u64>(),
        11 * ROUNDS
    );
    assert!(evbitmap::is_empty(&bm));
}
