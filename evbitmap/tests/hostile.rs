//! Whatever bytes the process leaves in a bitmap mailbox, the producer
//! records its bit and returns, and a consumer terminates without
//! inventing types.

#![cfg(not(loom))]

use proptest::prelude::*;
use vcpd_abi::sync::Ordering;
use vcpd_abi::{EvBitmap, MAX_NR_EVENT};

proptest! {
    #[test]
    fn any_bytes_are_survivable(bytes in any::<[u8; 8]>(), t in 0u16..(MAX_NR_EVENT as u16)) {
        let bm = EvBitmap::default();
        bm.check_bits.as_raw().store(bytes[0], Ordering::Relaxed);
        for (b, v) in bm.bitmap.iter().zip(&bytes[1..]) {
            b.store(*v, Ordering::Relaxed);
        }
        evbitmap::send(&bm, t, &evbitmap::BitmapStats::new()).unwrap();
        let got: Vec<u16> = std::iter::from_fn(|| evbitmap::try_recv(&bm)).map(|m| m.ev_type).collect();
        prop_assert!(got.contains(&t));
        prop_assert!(got.iter().all(|&g| usize::from(g) < MAX_NR_EVENT));
        prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "each type at most once");
        prop_assert!(evbitmap::is_empty(&bm));
    }
}
