//! The spurious-interrupt vector register (MSR 0x80F).
//!
//! Bits 7:0 are the spurious vector, bit 8 is the APIC software enable,
//! bit 9 focus-processor checking (reserved on Pentium 4 and later), bit 12
//! EOI-broadcast suppression. While software enable is clear every LVT entry
//! reads as masked and cannot be unmasked, which is why the bring-up writes
//! this register before it programs the LVT.
//!
//! # The spurious vector's handler must not send EOI
//!
//! A spurious interrupt is what the APIC delivers when an interrupt it was
//! about to dispatch disappears (typically because the task priority was
//! raised in the meantime). It does *not* set a bit in the in-service
//! register, so an EOI from its handler would retire some other, real,
//! in-service interrupt. The handler just returns (`iretq`).

use crate::vector::Vector;

/// A spurious-interrupt vector register value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Svr(u32);

const ENABLE_BIT: u32 = 1 << 8;
const EOI_BROADCAST_SUPPRESSION_BIT: u32 = 1 << 12;

impl Svr {
    /// Software-disabled, with `vector` as the spurious vector.
    pub const fn new(vector: Vector) -> Self {
        Self(vector.get() as u32)
    }

    /// Sets or clears APIC software enable (bit 8).
    pub const fn with_enabled(self, enabled: bool) -> Self {
        if enabled {
            Self(self.0 | ENABLE_BIT)
        } else {
            Self(self.0 & !ENABLE_BIT)
        }
    }

    /// Sets or clears EOI-broadcast suppression (bit 12; only meaningful
    /// with an I/O APIC and when the version register advertises it).
    pub const fn with_eoi_broadcast_suppression(self, on: bool) -> Self {
        if on {
            Self(self.0 | EOI_BROADCAST_SUPPRESSION_BIT)
        } else {
            Self(self.0 & !EOI_BROADCAST_SUPPRESSION_BIT)
        }
    }

    /// The raw value.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// A value from a raw register read.
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The spurious vector.
    pub const fn vector(self) -> u8 {
        self.0 as u8
    }

    /// Whether APIC software enable is set.
    pub const fn is_enabled(self) -> bool {
        self.0 & ENABLE_BIT != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_positions_match_the_sdm() {
        let v = Vector::new(0xFF).unwrap();
        assert_eq!(Svr::new(v).bits(), 0xFF);
        assert_eq!(Svr::new(v).with_enabled(true).bits(), 0x1FF);
        assert_eq!(
            Svr::new(v).with_enabled(true).with_enabled(false).bits(),
            0xFF
        );
        assert_eq!(
            Svr::new(v).with_eoi_broadcast_suppression(true).bits(),
            0x10FF
        );
        let s = Svr::from_bits(0x1EF);
        assert!(s.is_enabled());
        assert_eq!(s.vector(), 0xEF);
        assert!(!Svr::from_bits(0xFF).is_enabled());
    }
}
