//! IA32_APIC_BASE (MSR 0x1B) and the legal way into x2APIC mode.
//!
//! The flag bits come from the `x86_64` crate's [`ApicBaseFlags`] (BSP bit 8,
//! EXTD bit 10, EN bit 11); this module adds the value type around them and
//! the mode transition. SDM Vol. 3A, "x2APIC State Transitions": of the four
//! (EN, EXTD) states, (0, 1) is invalid, and the only ways into x2APIC mode
//! (1, 1) are from xAPIC mode (1, 0). Writing (1, 1) straight from disabled
//! (0, 0) raises #GP, and so does any x2APIC -> xAPIC write. So enabling is
//! zero, one or two writes depending on where the firmware left the APIC.

pub use x86_64::registers::model_specific::ApicBaseFlags;

/// An IA32_APIC_BASE value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct ApicBase(u64);

impl ApicBase {
    /// Physical address bits of the xAPIC MMIO base (12 up to the widest
    /// MAXPHYADDR, 52).
    pub const ADDRESS_MASK: u64 = 0x000F_FFFF_FFFF_F000;

    /// A value from the raw MSR contents.
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The raw MSR contents.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The known flags.
    pub const fn flags(self) -> ApicBaseFlags {
        ApicBaseFlags::from_bits_truncate(self.0)
    }

    /// BSP: this is the bootstrap processor.
    pub const fn is_bsp(self) -> bool {
        self.0 & ApicBaseFlags::BSP.bits() != 0
    }

    /// EN: the APIC is globally enabled.
    pub const fn is_enabled(self) -> bool {
        self.0 & ApicBaseFlags::LAPIC_ENABLE.bits() != 0
    }

    /// EN and EXTD: the APIC is in x2APIC mode.
    pub const fn is_x2apic(self) -> bool {
        let both = ApicBaseFlags::LAPIC_ENABLE.bits() | ApicBaseFlags::X2APIC_ENABLE.bits();
        self.0 & both == both
    }

    /// The xAPIC MMIO base address (unused in x2APIC mode, preserved on
    /// every write).
    pub const fn mmio_base(self) -> u64 {
        self.0 & Self::ADDRESS_MASK
    }

    /// The writes that take the APIC from this state to x2APIC mode, in
    /// order; every other bit (BSP, the MMIO base, reserved bits) is kept.
    ///
    /// - already x2APIC: none;
    /// - xAPIC (EN): one, EN | EXTD;
    /// - disabled, or the invalid EXTD-without-EN state: two, EN (xAPIC)
    ///   first, then EN | EXTD.
    pub const fn x2apic_enable_writes(self) -> [Option<Self>; 2] {
        let en = ApicBaseFlags::LAPIC_ENABLE.bits();
        let extd = ApicBaseFlags::X2APIC_ENABLE.bits();
        if self.is_x2apic() {
            [None, None]
        } else if self.is_enabled() {
            [Some(Self(self.0 | extd)), None]
        } else {
            [
                Some(Self((self.0 & !extd) | en)),
                Some(Self(self.0 | en | extd)),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_bits_match_the_sdm() {
        assert_eq!(ApicBaseFlags::BSP.bits(), 1 << 8);
        assert_eq!(ApicBaseFlags::X2APIC_ENABLE.bits(), 1 << 10);
        assert_eq!(ApicBaseFlags::LAPIC_ENABLE.bits(), 1 << 11);
    }

    #[test]
    fn decodes_a_typical_bsp_value() {
        // Power-on default of a BSP: base 0xFEE00000, EN, BSP.
        let v = ApicBase::from_bits(0xFEE0_0900);
        assert!(v.is_bsp());
        assert!(v.is_enabled());
        assert!(!v.is_x2apic());
        assert_eq!(v.mmio_base(), 0xFEE0_0000);
        assert_eq!(v.flags(), ApicBaseFlags::BSP | ApicBaseFlags::LAPIC_ENABLE);
        let ap = ApicBase::from_bits(0xFEE0_0C00);
        assert!(!ap.is_bsp());
        assert!(ap.is_x2apic());
    }

    #[test]
    fn x2apic_transitions_are_the_legal_ones() {
        let w = |bits: u64| {
            ApicBase::from_bits(bits)
                .x2apic_enable_writes()
                .map(|s| s.map(ApicBase::bits))
        };
        // Already x2APIC: nothing to write.
        assert_eq!(w(0xFEE0_0D00), [None, None]);
        // xAPIC: one write adds EXTD.
        assert_eq!(w(0xFEE0_0900), [Some(0xFEE0_0D00), None]);
        // Disabled: xAPIC first, then x2APIC; BSP and base kept.
        assert_eq!(w(0xFEE0_0100), [Some(0xFEE0_0900), Some(0xFEE0_0D00)]);
        // Invalid EXTD-only state: treated like disabled.
        assert_eq!(w(0xFEE0_0400), [Some(0xFEE0_0800), Some(0xFEE0_0C00)]);
    }
}
