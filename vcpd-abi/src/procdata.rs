//! The event part of procdata: kernel event queues and the VCPD array.

use core::mem::{offset_of, size_of};

use crate::msg::MAX_NR_EVENT;
use crate::sync::AtomicUsize;
use crate::vcpd::Vcpd;

/// The most vcores a process can have: the length of the VCPD array and the
/// bound of every vcore id the kernel accepts. Part of the ABI: changing it
/// changes the size of procdata.
pub const MAX_NUM_VCORES: usize = 64;

/// The event part of `struct procdata`.
///
/// `V` is the VCPD array length: [`MAX_NUM_VCORES`] in the ABI ([`ProcData`]);
/// smaller only in models and tests that want a smaller footprint. The
/// offset of every field is the same for every `V`.
#[repr(C)]
#[derive(Debug)]
pub struct ProcDataN<const V: usize> {
    /// For each event type, the user address of the event queue the process
    /// wants kernel events of that type on (0 = not wanted).
    pub kernel_evts: [AtomicUsize; MAX_NR_EVENT],
    /// One VCPD per possible vcore.
    pub vcpd: [Vcpd; V],
}

/// The ABI's procdata event part.
pub type ProcData = ProcDataN<MAX_NUM_VCORES>;

impl<const V: usize> ProcDataN<V> {
    /// A zeroed procdata.
    pub fn new() -> Self {
        Self {
            kernel_evts: core::array::from_fn(|_| AtomicUsize::new(0)),
            vcpd: core::array::from_fn(|_| Vcpd::default()),
        }
    }
}

impl<const V: usize> Default for ProcDataN<V> {
    fn default() -> Self {
        Self::new()
    }
}

/// Byte offset of `kernel_evts[ev_type]` from the start of procdata.
#[inline]
pub const fn kernel_evt_offset(ev_type: usize) -> usize {
    (offset_of!(ProcDataN<1>, kernel_evts))
        .wrapping_add(ev_type.wrapping_mul(size_of::<AtomicUsize>()))
}

/// Byte offset of `vcpd[vcoreid]` from the start of procdata.
#[inline]
pub const fn vcpd_offset(vcoreid: usize) -> usize {
    (offset_of!(ProcDataN<1>, vcpd)).wrapping_add(vcoreid.wrapping_mul(size_of::<Vcpd>()))
}
