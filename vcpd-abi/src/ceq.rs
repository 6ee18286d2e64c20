//! CEQ: the coalescing event queue (sticky status bits with a ring of hints).
//!
//! The consumer provides an `events[nr_events]` array of [`CeqEvent`] and a
//! power-of-two `ring[ring_sz]` of `i32` event indices ([`CEQ_EMPTY_SLOT`]
//! marks a free slot). Producers coalesce into `events[ev_type]` and post
//! the index to the ring once; if the ring overflows, consumers scan the
//! array instead.

use core::fmt;

use crate::sync::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, SharedBool};

/// Coalesce with bitwise OR.
pub const CEQ_OR: u8 = 1;
/// Coalesce with addition.
pub const CEQ_ADD: u8 = 2;
/// Ring value of a slot no producer has filled.
pub const CEQ_EMPTY_SLOT: i32 = -1;

/// One coalescing entry of the events array.
#[repr(C)]
#[derive(Debug, Default)]
pub struct CeqEvent {
    /// Coalesced `ev_arg2` values.
    pub coalesce: AtomicUsize,
    /// Last-writer-wins `ev_arg3`.
    pub blob_data: AtomicU64,
    /// The index is (believed to be) in the ring: producers need not post it.
    pub idx_posted: SharedBool,
    /// The application's, ignored by the CEQ.
    pub user_data: AtomicU64,
}

/// The CEQ head, embedded in a mailbox.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Ceq {
    /// User address of `events[nr_events]`.
    pub events: AtomicUsize,
    /// Entries in `events`.
    pub nr_events: AtomicU32,
    /// Where an interrupted overflow-recovery scan resumes.
    pub last_recovered: AtomicU32,
    /// Largest event index ever posted: bound of the recovery scan.
    pub max_event_ever: AtomicUsize,
    /// User address of `ring[ring_sz]`.
    pub ring: AtomicUsize,
    /// Ring entries, a power of two.
    pub ring_sz: AtomicU32,
    /// [`CEQ_OR`] or [`CEQ_ADD`].
    pub operation: AtomicU8,
    /// A producer could not post an index: consumers must scan.
    pub ring_overflowed: SharedBool,
    /// A consumer's recovery scan is in progress (resumable).
    pub overflow_recovery: SharedBool,
    /// Next ring slot producers fill.
    pub prod_idx: AtomicUsize,
    /// Ring slots consumed and handed back to producers.
    pub cons_pub_idx: AtomicUsize,
    /// Next ring slot consumers claim.
    pub cons_pvt_idx: AtomicUsize,
    /// The consumers' lock (user memory; the kernel never touches it).
    pub u_lock: [AtomicU32; 2],
}

/// How a CEQ coalesces `ev_arg2`.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CeqOp {
    /// Bitwise OR.
    Or = CEQ_OR,
    /// Addition.
    Add = CEQ_ADD,
}

/// A `u8` that is not a [`CeqOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownCeqOp(pub u8);

impl fmt::Display for UnknownCeqOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown CEQ operation {}", self.0)
    }
}

impl core::error::Error for UnknownCeqOp {}

impl TryFrom<u8> for CeqOp {
    type Error = UnknownCeqOp;

    fn try_from(v: u8) -> Result<Self, Self::Error> {
        match v {
            CEQ_OR => Ok(Self::Or),
            CEQ_ADD => Ok(Self::Add),
            other => Err(UnknownCeqOp(other)),
        }
    }
}
