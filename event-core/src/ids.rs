//! Vcore and physical-core ids, and the one "none" sentinel their atomic
//! slots use.

use core::fmt;

use vcpd_abi::MAX_NUM_VCORES;

/// The raw value that means "no vcore" / "no core" in an atomic slot
/// (a list head, a vcore's core, a kernel's own per-core records). Never a
/// valid [`VcoreId`] or [`PcoreId`].
pub const NO_ID: u32 = u32::MAX;

pub(crate) const NONE: u32 = NO_ID;

/// A vcore of a process: an index into its VCPD array.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct VcoreId(pub(crate) u32);

impl VcoreId {
    /// Vcore 0: an SCP's only vcore, and where round-robin starts.
    pub const ZERO: Self = Self(0);

    /// Vcore `id`, if it is below [`MAX_NUM_VCORES`] (the ABI's bound; a
    /// process's own bound may be lower).
    #[inline]
    pub const fn new(id: u32) -> Option<Self> {
        if (id as usize) < MAX_NUM_VCORES {
            Some(Self(id))
        } else {
            None
        }
    }

    /// The raw id.
    #[inline]
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The id as an array index.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    #[cfg_attr(not(feature = "kernel"), allow(dead_code))]
    pub(crate) const fn from_slot(raw: u32) -> Option<Self> {
        if raw == NONE { None } else { Some(Self(raw)) }
    }

    #[cfg_attr(not(feature = "kernel"), allow(dead_code))]
    pub(crate) const fn to_slot(v: Option<Self>) -> u32 {
        match v {
            Some(v) => v.0,
            None => NONE,
        }
    }
}

impl fmt::Debug for VcoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vcore {}", self.0)
    }
}

impl fmt::Display for VcoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A physical core, in the kernel's own numbering (whatever its
/// [`ProcOps::ipi`](crate::ProcOps::ipi) understands: a CPU index, an
/// APIC id).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct PcoreId(u32);

impl PcoreId {
    /// Physical core `id` (`u32::MAX` is reserved).
    ///
    /// # Panics
    /// If `id` is `u32::MAX`.
    #[inline]
    pub const fn new(id: u32) -> Self {
        assert!(id != NONE, "u32::MAX is not a core id");
        Self(id)
    }

    /// The raw id.
    #[inline]
    pub const fn get(self) -> u32 {
        self.0
    }

    #[cfg_attr(not(feature = "kernel"), allow(dead_code))]
    pub(crate) const fn from_slot(raw: u32) -> Option<Self> {
        if raw == NONE { None } else { Some(Self(raw)) }
    }
}

impl fmt::Debug for PcoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pcore {}", self.0)
    }
}

impl fmt::Display for PcoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
