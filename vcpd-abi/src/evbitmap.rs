//! Event bitmap: a mailbox that records only which event types occurred.

use crate::msg::MAX_NR_EVENT;
use crate::sync::{AtomicU8, SharedBool};

/// Bytes of the bitmap: one bit per event type below [`MAX_NR_EVENT`].
pub const EVBITMAP_BYTES: usize = (MAX_NR_EVENT - 1) / 8 + 1;

/// The event bitmap, embedded in a mailbox.
#[repr(C)]
#[derive(Debug, Default)]
pub struct EvBitmap {
    /// Set (after the bit) by producers: some bit may be set.
    pub check_bits: SharedBool,
    /// Bit `t` is set when an event of type `t` arrived.
    pub bitmap: [AtomicU8; EVBITMAP_BYTES],
}
