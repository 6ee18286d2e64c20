//! Event bitmap: the mailbox that records only *which* event types
//! happened, one bit per type, in memory shared between a kernel and an
//! untrusted process.
//!
//! The producer ([`send`]) sets the type's bit, then the `check_bits` hint.
//! A consumer ([`try_recv`]) skips the scan while the hint is clear; when a
//! scan finds nothing it clears the hint and scans once more, so a bit set
//! concurrently is never stranded behind a clear hint.
//!
//! Every write to `check_bits` is an atomic swap. Swaps on one location are
//! totally ordered and each reads the one before, so a consumer's clearing
//! swap that comes after a producer's setting swap synchronizes with that
//! producer and sees the bit it set before.

#![cfg_attr(not(test), no_std)]

use core::fmt;
use core::sync::atomic::AtomicU64;

use vcpd_abi::sync::Ordering;
use vcpd_abi::{EVBITMAP_BYTES, EvBitmap, EventMsg, MAX_NR_EVENT};

/// Why an event was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The type has no bit: it is not below [`MAX_NR_EVENT`].
    OutOfRange(u16),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange(t) => write!(f, "event type {t} has no bit (max {MAX_NR_EVENT})"),
        }
    }
}

impl core::error::Error for SendError {}

/// Producer counters a kernel can read (plain `core` atomics).
#[derive(Debug, Default)]
pub struct BitmapStats {
    /// Bits set.
    pub posted: AtomicU64,
    /// Events dropped: type out of range.
    pub dropped_out_of_range: AtomicU64,
}

impl BitmapStats {
    /// All counters zero.
    pub const fn new() -> Self {
        Self {
            posted: AtomicU64::new(0),
            dropped_out_of_range: AtomicU64::new(0),
        }
    }
}

/// Records an event of type `ev_type` in `evbm` (which the caller has
/// checked as user memory). The bit is all a bitmap keeps: arguments are
/// not delivered.
///
/// ```
/// use evbitmap::BitmapStats;
/// use vcpd_abi::EvBitmap;
///
/// let bm = EvBitmap::default();
/// evbitmap::init(&bm);
/// let stats = BitmapStats::new();
/// evbitmap::send(&bm, 7, &stats).unwrap();
/// evbitmap::send(&bm, 7, &stats).unwrap(); // one bit: types, not counts
/// assert_eq!(evbitmap::try_recv(&bm).map(|m| m.ev_type), Some(7));
/// assert!(evbitmap::try_recv(&bm).is_none());
/// assert!(evbitmap::send(&bm, 50, &stats).is_err()); // not below MAX_NR_EVENT
/// ```
pub fn send(evbm: &EvBitmap, ev_type: u16, stats: &BitmapStats) -> Result<(), SendError> {
    let t = usize::from(ev_type);
    if t >= MAX_NR_EVENT {
        stats
            .dropped_out_of_range
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        return Err(SendError::OutOfRange(ev_type));
    }
    evbm.bitmap[t / 8].fetch_or(1 << (t % 8), Ordering::Release);
    // Release (and a swap, see the crate docs): whoever sees the hint set,
    // or clears it after us, sees our bit.
    evbm.check_bits.as_raw().swap(1, Ordering::AcqRel);
    stats
        .posted
        .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Mask of the meaningful bits of byte `i` (bits past [`MAX_NR_EVENT`] in
/// the last byte are ignored, whatever the process wrote there).
const fn byte_mask(i: usize) -> u8 {
    let first = i * 8;
    if first + 8 <= MAX_NR_EVENT {
        0xff
    } else {
        ((1u16 << (MAX_NR_EVENT - first)) - 1) as u8
    }
}

/// Clears every bit and the hint (set-up, before producers use it).
pub fn init(evbm: &EvBitmap) {
    for b in &evbm.bitmap {
        b.store(0, Ordering::Relaxed);
    }
    evbm.check_bits.store(false, Ordering::Release);
}

/// Whether no event is recorded now.
pub fn is_empty(evbm: &EvBitmap) -> bool {
    !evbm.check_bits.load(Ordering::Acquire) && !any_bit_set(evbm)
}

/// Takes one recorded event (lowest type first): a message carrying only
/// `ev_type`. `None` when nothing is recorded.
pub fn try_recv(evbm: &EvBitmap) -> Option<EventMsg> {
    loop {
        if !evbm.check_bits.load(Ordering::Acquire) {
            return None;
        }
        if let Some(t) = take_bit(evbm) {
            return Some(EventMsg::new(t));
        }
        // Found nothing: clear the hint, then look again. A producer whose
        // hint-setting swap precedes our clearing swap is synchronized with
        // us, so its bit is visible to the second look; one that comes
        // after leaves the hint set.
        evbm.check_bits.as_raw().swap(0, Ordering::AcqRel);
        if !any_bit_set(evbm) {
            return None;
        }
        evbm.check_bits.as_raw().swap(1, Ordering::AcqRel);
    }
}

fn take_bit(evbm: &EvBitmap) -> Option<u16> {
    for (i, byte) in evbm.bitmap.iter().enumerate().take(EVBITMAP_BYTES) {
        let mut cur = byte.load(Ordering::Acquire) & byte_mask(i);
        while cur != 0 {
            let bit = cur.trailing_zeros() as usize;
            let old = byte.fetch_and(!(1 << bit), Ordering::AcqRel);
            if old & (1 << bit) != 0 {
                return Some((i * 8 + bit) as u16);
            }
            // Another consumer took it: try the byte's other bits.
            cur = old & byte_mask(i) & !(1 << bit);
        }
    }
    None
}

fn any_bit_set(evbm: &EvBitmap) -> bool {
    evbm.bitmap
        .iter()
        .enumerate()
        .any(|(i, b)| b.load(Ordering::Acquire) & byte_mask(i) != 0)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn fresh() -> EvBitmap {
        let b = EvBitmap::default();
        init(&b);
        b
    }

    #[test]
    fn bits_come_back_lowest_first_once_each() {
        let b = fresh();
        let s = BitmapStats::new();
        for t in [49, 3, 8, 3, 0] {
            send(&b, t, &s).unwrap();
        }
        let got: Vec<u16> = core::iter::from_fn(|| try_recv(&b))
            .map(|m| m.ev_type)
            .collect();
        assert_eq!(
            got,
            vec![0, 3, 8, 49],
            "a repeated type coalesces into its bit"
        );
        assert!(is_empty(&b));
        assert!(
            !b.check_bits.load(Ordering::Relaxed),
            "hint cleared by the empty scan"
        );
        assert_eq!(s.posted.load(core::sync::atomic::Ordering::Relaxed), 5);
    }

    #[test]
    fn out_of_range_type_is_dropped() {
        let b = fresh();
        let s = BitmapStats::new();
        assert_eq!(send(&b, 50, &s), Err(SendError::OutOfRange(50)));
        assert_eq!(send(&b, u16::MAX, &s), Err(SendError::OutOfRange(u16::MAX)));
        assert!(is_empty(&b));
        assert_eq!(
            s.dropped_out_of_range
                .load(core::sync::atomic::Ordering::Relaxed),
            2
        );
    }

    #[test]
    fn clear_hint_skips_the_scan() {
        let b = fresh();
        b.bitmap[0].store(1, Ordering::Relaxed);
        assert!(
            try_recv(&b).is_none(),
            "no hint: the consumer does not scan"
        );
        assert!(!is_empty(&b), "but is_empty looks at the bits");
    }

    #[test]
    fn hint_without_bits_is_cleared_and_rechecked() {
        let b = fresh();
        b.check_bits.store(true, Ordering::Relaxed);
        assert!(try_recv(&b).is_none());
        assert!(!b.check_bits.load(Ordering::Relaxed));
    }

    #[test]
    fn garbage_bits_past_the_last_type_are_ignored() {
        let b = fresh();
        b.bitmap[6].store(0xfc, Ordering::Relaxed); // bits 50..55
        b.check_bits.as_raw().store(7, Ordering::Relaxed); // any non-zero byte is "set"
        assert!(
            try_recv(&b).is_none(),
            "terminates, returns no invented type"
        );
        assert!(is_empty(&b));
    }

    #[test]
    fn byte_masks_cover_exactly_max_nr_event_bits() {
        let total: u32 = (0..EVBITMAP_BYTES).map(|i| byte_mask(i).count_ones()).sum();
        assert_eq!(total as usize, MAX_NR_EVENT);
    }
}
