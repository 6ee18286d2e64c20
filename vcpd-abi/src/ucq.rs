//! UCQ: the unbounded concurrent queue's head, pages and slot encoding.
//!
//! A UCQ is a chain of 4 KiB pages. Each page starts with a
//! [`UcqPageHeader`] and holds [`NR_MSG_PER_PAGE`] [`MsgContainer`]s. The
//! producer and consumer indices are *slots*: one word holding a
//! page-aligned page address in its high bits and a slot number in its low
//! 12 bits, so page and slot change together in one atomic operation.

use core::mem::{offset_of, size_of};

use crate::msg::SharedEventMsg;
use crate::sync::{AtomicU32, AtomicUsize, SharedBool};

/// The page size UCQ pages and slot encodings use.
pub const PAGE_SIZE: usize = 4096;
/// Bits of a slot word that hold the slot number.
pub const PAGE_OFFSET_MASK: usize = PAGE_SIZE - 1;
/// Message containers per page: `(4096 - 16) / 32`.
pub const NR_MSG_PER_PAGE: usize = 127;
/// The producer warns when a UCQ has grown by more than this many pages.
pub const UCQ_WARN_THRESH: usize = 1000;

/// The UCQ head, embedded in a mailbox.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Ucq {
    /// Next slot producers claim (page | slot number).
    pub prod_idx: AtomicUsize,
    /// A consumed page kept for the producer's next page switch (0 = none).
    pub spare_pg: AtomicUsize,
    /// Pages the kernel allocated beyond the initial ones.
    pub nr_extra_pgs: AtomicUsize,
    /// Next slot consumers claim (page | slot number).
    pub cons_idx: AtomicUsize,
    /// Set while a producer switches pages: others go straight to the lock.
    pub prod_overflow: SharedBool,
    /// The consumer initialised the queue; producers drop messages until then.
    pub ucq_ready: SharedBool,
    /// The consumers' lock (user memory; the kernel never touches it).
    pub u_lock: [AtomicU32; 2],
}

/// The header at the start of every UCQ page.
#[repr(C)]
#[derive(Debug, Default)]
pub struct UcqPageHeader {
    /// User address of the next page, set by the producer that linked it.
    pub cons_next_pg: AtomicUsize,
    /// Containers consumed on this page: an inverted reference count that
    /// reaches [`NR_MSG_PER_PAGE`] when the page may be recycled.
    pub nr_cons: AtomicUsize,
}

/// One message slot of a page.
#[repr(C)]
#[derive(Debug, Default)]
pub struct MsgContainer {
    /// The message.
    pub ev_msg: SharedEventMsg,
    /// Set (release) by the producer once `ev_msg` is written; cleared by
    /// the consumer that took it.
    pub ready: SharedBool,
}

/// A whole UCQ page.
#[repr(C, align(4096))]
#[derive(Debug)]
pub struct UcqPage {
    /// Page header.
    pub header: UcqPageHeader,
    /// The message containers.
    pub msgs: [MsgContainer; NR_MSG_PER_PAGE],
}

impl UcqPage {
    /// A zeroed page (for hosts that build pages as values, e.g. loom models).
    pub fn new() -> Self {
        Self {
            header: UcqPageHeader::default(),
            msgs: core::array::from_fn(|_| MsgContainer::default()),
        }
    }
}

impl Default for UcqPage {
    fn default() -> Self {
        Self::new()
    }
}

/// A slot word: page address in the high bits, slot number in the low 12.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Slot(pub usize);

impl Slot {
    /// The slot `index` of the page at `page` (page-aligned).
    #[inline]
    pub const fn new(page: usize, index: usize) -> Self {
        Self((page & !PAGE_OFFSET_MASK) | (index & PAGE_OFFSET_MASK))
    }

    /// The page address part.
    #[inline]
    pub const fn page(self) -> usize {
        self.0 & !PAGE_OFFSET_MASK
    }

    /// The slot number part.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 & PAGE_OFFSET_MASK
    }

    /// A slot a producer or consumer may use: a non-null page and a slot
    /// number below [`NR_MSG_PER_PAGE`]. Anything else means "switch pages".
    #[inline]
    pub const fn is_good(self) -> bool {
        self.index() < NR_MSG_PER_PAGE && self.page() != 0
    }

    /// The user address of this slot's container. Only an address: nothing
    /// is read, and it must be checked before use. Wraps instead of
    /// overflowing, so a garbage slot gives a garbage address, not a panic.
    #[inline]
    pub const fn container_addr(self) -> usize {
        self.page()
            .wrapping_add(offset_of!(UcqPage, msgs))
            .wrapping_add(self.index().wrapping_mul(size_of::<MsgContainer>()))
    }
}

/// Free-function form of [`Slot::is_good`], as the C ABI names it.
#[inline]
pub const fn slot_is_good(slot: usize) -> bool {
    Slot(slot).is_good()
}
