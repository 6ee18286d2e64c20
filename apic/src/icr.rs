//! The interrupt command register (ICR) in x2APIC mode.
//!
//! Layout (SDM Vol. 3A, "Interrupt Command Register (ICR)" and "ICR
//! Operation in x2APIC Mode"):
//!
//! | bits  | field |
//! |-------|-------|
//! | 7:0   | vector (SIPI: start page; NMI/INIT/SMI: must be 0) |
//! | 10:8  | delivery mode |
//! | 11    | destination mode (0 physical, 1 logical) |
//! | 12    | delivery status in xAPIC mode; in x2APIC mode ignored on write, undefined on read |
//! | 14    | level (0 de-assert, 1 assert) |
//! | 15    | trigger mode (0 edge, 1 level) |
//! | 19:18 | destination shorthand |
//! | 63:32 | destination (the full 32-bit x2APIC ID) |
//!
//! # No delivery-status polling
//!
//! The SDM says that in x2APIC mode the lower half of the ICR is the xAPIC
//! one *except that the delivery status bit is removed, since it is not
//! needed*: WRMSR ignores bit 12 and RDMSR returns an undefined value there.
//! Sending is a single WRMSR, and software has no reason to read the ICR
//! back (it stays readable for debugging only, and need not return what was
//! written). So this crate never polls bit 12 and has no wait loop on it;
//! the `x2apic` crate's `get_ipi_delivery_status` reads that undefined bit. Errors a send can still report go to the ESR, which the checked send
//! paths read (see [`LocalApic::start_ap`](crate::LocalApic::start_ap)).
//!
//! A side benefit of the single 64-bit write: unlike xAPIC (ICR high, then
//! ICR low, as two MMIO writes an interrupt can split), an x2APIC IPI cannot
//! be torn by an interrupt handler that sends its own IPI in between, so
//! sending needs no interrupt masking.

use crate::vector::{StartupPage, Vector};

/// Delivery mode, ICR bits 10:8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DeliveryMode {
    /// Deliver the vector to the destination(s).
    Fixed = 0b000,
    /// Deliver to the lowest-priority destination. *Reserved in x2APIC
    /// mode*: the APIC sets ESR "redirectable IPI" and drops the IPI. Kept
    /// only so an xAPIC-era value decodes.
    LowestPriority = 0b001,
    /// System management interrupt; vector must be 0.
    Smi = 0b010,
    /// Non-maskable interrupt; vector ignored (sent as 0).
    Nmi = 0b100,
    /// INIT (level assert), or INIT level de-assert with level 0 and
    /// trigger level.
    Init = 0b101,
    /// STARTUP: the vector is the real-mode start page.
    StartUp = 0b110,
}

impl DeliveryMode {
    const fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0b000 => Self::Fixed,
            0b001 => Self::LowestPriority,
            0b010 => Self::Smi,
            0b100 => Self::Nmi,
            0b101 => Self::Init,
            0b110 => Self::StartUp,
            _ => return None,
        })
    }
}

/// Destination mode, ICR bit 11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationMode {
    /// The destination is an x2APIC ID.
    Physical,
    /// The destination is a logical (cluster, bitmap) ID.
    Logical,
}

/// Level, ICR bit 14. Must be `Assert` for every mode except INIT level
/// de-assert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// 0: only for INIT level de-assert.
    Deassert,
    /// 1: everything else.
    Assert,
}

/// Trigger mode, ICR bit 15 (and LVT bit 15 for LINT pins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerMode {
    /// 0.
    Edge,
    /// 1.
    Level,
}

/// Destination shorthand, ICR bits 19:18.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Shorthand {
    /// Use the destination field.
    None = 0b00,
    /// The sending CPU only.
    SelfOnly = 0b01,
    /// Every CPU, the sender included.
    AllIncludingSelf = 0b10,
    /// Every CPU but the sender.
    AllExcludingSelf = 0b11,
}

/// A 64-bit x2APIC ICR value.
///
/// Built with the presets ([`Icr::fixed`], [`Icr::init_assert`], ...) or
/// field by field from [`Icr::new`]; each `with_*` replaces one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Icr(u64);

const VECTOR_MASK: u64 = 0xFF;
const DELIVERY_SHIFT: u32 = 8;
const DELIVERY_MASK: u64 = 0b111 << DELIVERY_SHIFT;
const DEST_MODE_BIT: u64 = 1 << 11;
const LEVEL_BIT: u64 = 1 << 14;
const TRIGGER_BIT: u64 = 1 << 15;
const SHORTHAND_SHIFT: u32 = 18;
const SHORTHAND_MASK: u64 = 0b11 << SHORTHAND_SHIFT;
const DEST_SHIFT: u32 = 32;

impl Icr {
    /// Bits that are reserved in x2APIC mode (13, 16, 17, 20–31); a WRMSR
    /// with any of them set raises #GP.
    pub const RESERVED: u64 = 0x0000_0000_FFF3_2000;

    /// Bit 12, xAPIC's delivery status: ignored by an x2APIC ICR write,
    /// undefined when read. Never set by this crate.
    pub const DELIVERY_STATUS: u64 = 1 << 12;

    /// A physical-mode, edge, level-assert ICR for `mode`, vector 0,
    /// destination 0, no shorthand.
    ///
    /// Level is "assert" because the SDM requires bit 14 set for every
    /// delivery mode except INIT level de-assert.
    pub const fn new(mode: DeliveryMode) -> Self {
        Self(((mode as u64) << DELIVERY_SHIFT) | LEVEL_BIT)
    }

    /// A fixed IPI of `vector` to the CPU with x2APIC ID `apic_id`. The
    /// ID 0xFFFF_FFFF is the x2APIC broadcast (every CPU, sender included).
    pub const fn fixed(apic_id: u32, vector: Vector) -> Self {
        Self::new(DeliveryMode::Fixed)
            .with_vector(vector.get())
            .with_destination(apic_id)
    }

    /// A fixed IPI of `vector` to every CPU but the sender.
    pub const fn fixed_all_excluding_self(vector: Vector) -> Self {
        Self::new(DeliveryMode::Fixed)
            .with_vector(vector.get())
            .with_shorthand(Shorthand::AllExcludingSelf)
    }

    /// An NMI to `apic_id`.
    pub const fn nmi(apic_id: u32) -> Self {
        Self::new(DeliveryMode::Nmi).with_destination(apic_id)
    }

    /// INIT, level assert (level-triggered, as in the MP specification's
    /// assert/de-assert pair; the trigger bit is ignored for an assert on
    /// current processors).
    pub const fn init_assert(apic_id: u32) -> Self {
        Self::new(DeliveryMode::Init)
            .with_trigger(TriggerMode::Level)
            .with_destination(apic_id)
    }

    /// INIT level de-assert: level 0, trigger level, as the SDM requires.
    /// Pentium 4 and later ignore it; it is sent for older parts and because
    /// the MP specification's start-up algorithm does.
    pub const fn init_deassert(apic_id: u32) -> Self {
        Self::init_assert(apic_id).with_level(Level::Deassert)
    }

    /// STARTUP to `apic_id`, starting it at `page`.
    pub const fn startup(apic_id: u32, page: StartupPage) -> Self {
        Self::new(DeliveryMode::StartUp)
            .with_vector(page.page())
            .with_destination(apic_id)
    }

    /// Replaces the vector field (bits 7:0).
    pub const fn with_vector(self, vector: u8) -> Self {
        Self((self.0 & !VECTOR_MASK) | vector as u64)
    }

    /// Replaces the delivery mode (bits 10:8).
    pub const fn with_delivery_mode(self, mode: DeliveryMode) -> Self {
        Self((self.0 & !DELIVERY_MASK) | ((mode as u64) << DELIVERY_SHIFT))
    }

    /// Replaces the destination mode (bit 11).
    pub const fn with_destination_mode(self, mode: DestinationMode) -> Self {
        match mode {
            DestinationMode::Physical => Self(self.0 & !DEST_MODE_BIT),
            DestinationMode::Logical => Self(self.0 | DEST_MODE_BIT),
        }
    }

    /// Replaces the level (bit 14).
    pub const fn with_level(self, level: Level) -> Self {
        match level {
            Level::Deassert => Self(self.0 & !LEVEL_BIT),
            Level::Assert => Self(self.0 | LEVEL_BIT),
        }
    }

    /// Replaces the trigger mode (bit 15).
    pub const fn with_trigger(self, trigger: TriggerMode) -> Self {
        match trigger {
            TriggerMode::Edge => Self(self.0 & !TRIGGER_BIT),
            TriggerMode::Level => Self(self.0 | TRIGGER_BIT),
        }
    }

    /// Replaces the destination shorthand (bits 19:18).
    pub const fn with_shorthand(self, shorthand: Shorthand) -> Self {
        Self((self.0 & !SHORTHAND_MASK) | ((shorthand as u64) << SHORTHAND_SHIFT))
    }

    /// Replaces the destination (bits 63:32). Ignored by the hardware when
    /// a shorthand is set.
    pub const fn with_destination(self, apic_id: u32) -> Self {
        Self((self.0 & 0xFFFF_FFFF) | ((apic_id as u64) << DEST_SHIFT))
    }

    /// The raw 64-bit value, as written to MSR 0x830.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// An ICR from a raw value (e.g. one read back for debugging). Keeps
    /// every bit, reserved ones included; see [`Icr::RESERVED`].
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The vector field.
    pub const fn vector(self) -> u8 {
        (self.0 & VECTOR_MASK) as u8
    }

    /// The delivery mode, or `None` for the reserved encodings 0b011 and
    /// 0b111.
    pub const fn delivery_mode(self) -> Option<DeliveryMode> {
        DeliveryMode::from_bits(((self.0 & DELIVERY_MASK) >> DELIVERY_SHIFT) as u8)
    }

    /// The destination mode.
    pub const fn destination_mode(self) -> DestinationMode {
        if self.0 & DEST_MODE_BIT != 0 {
            DestinationMode::Logical
        } else {
            DestinationMode::Physical
        }
    }

    /// The level.
    pub const fn level(self) -> Level {
        if self.0 & LEVEL_BIT != 0 {
            Level::Assert
        } else {
            Level::Deassert
        }
    }

    /// The trigger mode.
    pub const fn trigger(self) -> TriggerMode {
        if self.0 & TRIGGER_BIT != 0 {
            TriggerMode::Level
        } else {
            TriggerMode::Edge
        }
    }

    /// The destination shorthand.
    pub const fn shorthand(self) -> Shorthand {
        match (self.0 & SHORTHAND_MASK) >> SHORTHAND_SHIFT {
            0b00 => Shorthand::None,
            0b01 => Shorthand::SelfOnly,
            0b10 => Shorthand::AllIncludingSelf,
            _ => Shorthand::AllExcludingSelf,
        }
    }

    /// The destination x2APIC ID.
    pub const fn destination(self) -> u32 {
        (self.0 >> DEST_SHIFT) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Vector = Vector::new(0xF0).unwrap();

    #[test]
    fn delivery_mode_encodings_match_the_sdm() {
        let at = |m| Icr::new(m).bits() & 0x700;
        assert_eq!(at(DeliveryMode::Fixed), 0x000);
        assert_eq!(at(DeliveryMode::LowestPriority), 0x100);
        assert_eq!(at(DeliveryMode::Smi), 0x200);
        assert_eq!(at(DeliveryMode::Nmi), 0x400);
        assert_eq!(at(DeliveryMode::Init), 0x500);
        assert_eq!(at(DeliveryMode::StartUp), 0x600);
    }

    #[test]
    fn single_field_bit_positions() {
        let base = Icr::new(DeliveryMode::Fixed);
        assert_eq!(base.bits(), 0x4000, "level assert (bit 14) is the default");
        assert_eq!(base.with_vector(0xAB).bits(), 0x40AB);
        assert_eq!(
            base.with_destination_mode(DestinationMode::Logical).bits(),
            0x4800
        );
        assert_eq!(base.with_level(Level::Deassert).bits(), 0x0000);
        assert_eq!(base.with_trigger(TriggerMode::Level).bits(), 0xC000);
        assert_eq!(base.with_shorthand(Shorthand::SelfOnly).bits(), 0x4_4000);
        assert_eq!(
            base.with_shorthand(Shorthand::AllIncludingSelf).bits(),
            0x8_4000
        );
        assert_eq!(
            base.with_shorthand(Shorthand::AllExcludingSelf).bits(),
            0xC_4000
        );
        assert_eq!(
            base.with_destination(0x1234_5678).bits(),
            0x1234_5678_0000_4000
        );
        assert_eq!(
            base.with_destination(u32::MAX).bits(),
            0xFFFF_FFFF_0000_4000
        );
    }

    #[test]
    fn presets_have_the_sdm_values() {
        assert_eq!(Icr::fixed(3, V).bits(), 0x0000_0003_0000_40F0);
        assert_eq!(
            Icr::fixed_all_excluding_self(V).bits(),
            0x0000_0000_000C_40F0
        );
        assert_eq!(Icr::nmi(7).bits(), 0x0000_0007_0000_4400);
        assert_eq!(Icr::init_assert(1).bits(), 0x0000_0001_0000_C500);
        assert_eq!(Icr::init_deassert(1).bits(), 0x0000_0001_0000_8500);
        let page = StartupPage::from_addr(0x8000).unwrap();
        assert_eq!(Icr::startup(2, page).bits(), 0x0000_0002_0000_4608);
    }

    #[test]
    fn presets_never_set_reserved_bits() {
        let page = StartupPage::from_addr(0x9F000).unwrap();
        for icr in [
            Icr::fixed(u32::MAX, Vector::new(0xFF).unwrap()),
            Icr::fixed_all_excluding_self(V),
            Icr::nmi(u32::MAX),
            Icr::init_assert(u32::MAX),
            Icr::init_deassert(u32::MAX),
            Icr::startup(u32::MAX, page),
            Icr::new(DeliveryMode::Fixed)
                .with_destination_mode(DestinationMode::Logical)
                .with_trigger(TriggerMode::Level)
                .with_shorthand(Shorthand::AllIncludingSelf),
        ] {
            assert_eq!(
                icr.bits() & (Icr::RESERVED | Icr::DELIVERY_STATUS),
                0,
                "{icr:?}"
            );
        }
        // Reserved: 13, 16, 17, 20-31; bit 12 is separate (ignored).
        assert_eq!(Icr::RESERVED, (1 << 13) | (0b11 << 16) | (0xFFF << 20));
        assert_eq!(Icr::DELIVERY_STATUS, 0x1000);
        assert_eq!(Icr::RESERVED & Icr::DELIVERY_STATUS, 0);
    }

    #[test]
    fn fields_round_trip() {
        let icr = Icr::new(DeliveryMode::LowestPriority)
            .with_vector(0x42)
            .with_destination_mode(DestinationMode::Logical)
            .with_level(Level::Deassert)
            .with_trigger(TriggerMode::Level)
            .with_shorthand(Shorthand::AllIncludingSelf)
            .with_destination(0xDEAD_BEEF);
        assert_eq!(icr.vector(), 0x42);
        assert_eq!(icr.delivery_mode(), Some(DeliveryMode::LowestPriority));
        assert_eq!(icr.destination_mode(), DestinationMode::Logical);
        assert_eq!(icr.level(), Level::Deassert);
        assert_eq!(icr.trigger(), TriggerMode::Level);
        assert_eq!(icr.shorthand(), Shorthand::AllIncludingSelf);
        assert_eq!(icr.destination(), 0xDEAD_BEEF);
        assert_eq!(Icr::from_bits(icr.bits()), icr);
        // Replacing a field clears its old value.
        let icr = icr
            .with_delivery_mode(DeliveryMode::Fixed)
            .with_shorthand(Shorthand::None);
        assert_eq!(icr.delivery_mode(), Some(DeliveryMode::Fixed));
        assert_eq!(icr.shorthand(), Shorthand::None);
        assert_eq!(Icr::from_bits(0x300).delivery_mode(), None);
        assert_eq!(Icr::from_bits(0x700).delivery_mode(), None);
    }
}
