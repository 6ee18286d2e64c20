//! Loom model of the bitmap: a producer setting bits races a consumer's
//! clear-and-recheck. Whenever both stop, no set bit hides behind a clear
//! `check_bits` (guarantee 3), and every bit is taken exactly once.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p evbitmap --test loom --release`.

#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use vcpd_abi::EvBitmap;
use vcpd_abi::sync::Ordering;

fn drain(bm: &EvBitmap, into: &mut Vec<u16>) {
    while let Some(m) = evbitmap::try_recv(bm) {
        into.push(m.ev_type);
    }
}

#[test]
fn set_races_clear_and_recheck() {
    loom::model(|| {
        let bm = Arc::new(EvBitmap::default());
        evbitmap::init(&bm);
        let producer = {
            let bm = bm.clone();
            thread::spawn(move || {
                let stats = evbitmap::BitmapStats::new();
                evbitmap::send(&bm, 3, &stats).unwrap();
                evbitmap::send(&bm, 12, &stats).unwrap();
            })
        };
        let mut got = Vec::new();
        drain(&bm, &mut got);
        drain(&bm, &mut got);
        producer.join().unwrap();
        // The invariant at quiescence: any set bit has the hint set.
        let bit_set = bm.bitmap.iter().any(|b| b.load(Ordering::Relaxed) != 0);
        assert!(
            !bit_set || bm.check_bits.load(Ordering::Relaxed),
            "a bit is hidden: {got:?}"
        );
        drain(&bm, &mut got);
        got.sort_unstable();
        assert_eq!(got, vec![3, 12]);
    });
}

#[test]
fn two_consumers_take_each_bit_once() {
    loom::model(|| {
        let bm = Arc::new(EvBitmap::default());
        evbitmap::init(&bm);
        let stats = evbitmap::BitmapStats::new();
        evbitmap::send(&bm, 5, &stats).unwrap();
        let other = {
            let bm = bm.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                drain(&bm, &mut got);
                got
            })
        };
        let producer = {
            let bm = bm.clone();
            thread::spawn(move || evbitmap::send(&bm, 6, &evbitmap::BitmapStats::new()).unwrap())
        };
        let mut got = Vec::new();
        drain(&bm, &mut got);
        producer.join().unwrap();
        got.extend(other.join().unwrap());
        drain(&bm, &mut got);
        got.sort_unstable();
        assert_eq!(got, vec![5, 6]);
    });
}
