//! Checked interrupt vectors and STARTUP IPI pages.
//!
//! Both are values the hardware silently mis-handles when they are wrong (a
//! vector below 16 sets an ESR bit and the interrupt is lost; a SIPI page in
//! the reserved range starts nothing), so each has one checked constructor
//! and every typed send path takes the checked type.

use crate::error::ApicError;

/// An interrupt vector in 0x20–0xFF.
///
/// Vectors 0–15 are illegal for the local APIC (SDM Vol. 3A, "Error
/// Handling": send/receive illegal vector). Vectors 16–31 are legal for the
/// APIC but are the CPU's exception vectors; an interrupt there would run an
/// exception handler with the wrong stack layout, so they are rejected too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Vector(u8);

impl Vector {
    /// The lowest vector this type accepts.
    pub const MIN: u8 = 0x20;

    /// `raw` as a vector, or `None` if it is below [`Vector::MIN`].
    ///
    /// `const`, so a kernel can write
    /// `const IPI: Vector = Vector::new(0xF0).unwrap();`.
    pub const fn new(raw: u8) -> Option<Self> {
        if raw >= Self::MIN {
            Some(Self(raw))
        } else {
            None
        }
    }

    /// The vector number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Vector {
    type Error = ApicError;

    fn try_from(raw: u8) -> Result<Self, ApicError> {
        Self::new(raw).ok_or(ApicError::InvalidVector { vector: raw })
    }
}

impl From<Vector> for u8 {
    fn from(v: Vector) -> u8 {
        v.0
    }
}

/// The page a STARTUP IPI starts an application processor at.
///
/// The AP begins in real mode at `CS:IP = (page << 8):0000`, i.e. physical
/// address `page * 4096`. The SIPI vector field holds the page number. SDM
/// Vol. 3A ("MP Initialization Protocol"): the trampoline must be 4 KiB
/// aligned and below 1 MiB, and vectors 0xA0–0xBF are reserved (that range is
/// the legacy VGA window anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct StartupPage(u8);

impl StartupPage {
    /// The page holding physical address `addr`, if a SIPI can reach it.
    pub const fn from_addr(addr: u64) -> Result<Self, ApicError> {
        if addr % 4096 != 0 || addr >= 0x10_0000 {
            return Err(ApicError::InvalidStartupAddress { addr });
        }
        let page = (addr / 4096) as u8;
        if matches!(page, 0xA0..=0xBF) {
            return Err(ApicError::InvalidStartupAddress { addr });
        }
        Ok(Self(page))
    }

    /// The page number: the value of the SIPI's vector field.
    pub const fn page(self) -> u8 {
        self.0
    }

    /// The physical address the AP starts executing at.
    pub const fn addr(self) -> u64 {
        self.0 as u64 * 4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_rejects_apic_illegal_and_exception_vectors() {
        for raw in 0..0x20u8 {
            assert_eq!(Vector::new(raw), None);
            assert_eq!(
                Vector::try_from(raw),
                Err(ApicError::InvalidVector { vector: raw })
            );
        }
        assert_eq!(Vector::new(0x20).map(Vector::get), Some(0x20));
        assert_eq!(Vector::new(0xFF).map(u8::from), Some(0xFF));
    }

    #[test]
    fn startup_page_accepts_aligned_low_memory() {
        assert_eq!(
            StartupPage::from_addr(0x8000).map(StartupPage::page),
            Ok(0x08)
        );
        assert_eq!(
            StartupPage::from_addr(0x8000).map(StartupPage::addr),
            Ok(0x8000)
        );
        assert_eq!(StartupPage::from_addr(0).map(StartupPage::page), Ok(0));
        assert_eq!(
            StartupPage::from_addr(0x9F000).map(StartupPage::page),
            Ok(0x9F)
        );
        assert_eq!(
            StartupPage::from_addr(0xC0000).map(StartupPage::page),
            Ok(0xC0)
        );
        assert_eq!(
            StartupPage::from_addr(0xFF000).map(StartupPage::page),
            Ok(0xFF)
        );
    }

    #[test]
    fn startup_page_rejects_unaligned_high_and_reserved() {
        for addr in [
            0x8001, 0x8800, 0x10_0000, 0x20_0000, 0xA0000, 0xB8000, 0xBF000,
        ] {
            assert_eq!(
                StartupPage::from_addr(addr),
                Err(ApicError::InvalidStartupAddress { addr }),
                "{addr:#x}"
            );
        }
    }
}
