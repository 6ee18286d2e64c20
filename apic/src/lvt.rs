//! Local vector table entries and the timer's divide configuration.
//!
//! One 32-bit layout serves every LVT register; fields that a given entry
//! does not have are reserved there (SDM Vol. 3A, "Local Vector Table"):
//!
//! | bits  | field | present in |
//! |-------|-------|------------|
//! | 7:0   | vector | all |
//! | 10:8  | delivery mode | LINT0/1, perf, thermal, CMCI (timer and error: fixed only) |
//! | 12    | delivery status (read-only) | all |
//! | 13    | pin polarity (0 active high) | LINT0/1 |
//! | 14    | remote IRR (read-only) | LINT0/1 |
//! | 15    | trigger mode | LINT0/1 |
//! | 16    | mask | all |
//! | 18:17 | timer mode | timer |
//!
//! The builder leaves read-only and absent fields zero, so a value built for
//! one entry is valid for it as long as only that entry's setters are used.

use crate::icr::TriggerMode;
use crate::vector::Vector;

/// LVT delivery mode, bits 10:8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LvtDeliveryMode {
    /// Deliver the vector.
    Fixed = 0b000,
    /// System management interrupt.
    Smi = 0b010,
    /// Non-maskable interrupt.
    Nmi = 0b100,
    /// INIT.
    Init = 0b101,
    /// External interrupt: the vector comes from an 8259 (virtual wire).
    ExtInt = 0b111,
}

/// Pin polarity, bit 13 (LINT0/LINT1 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Polarity {
    /// 0.
    ActiveHigh,
    /// 1.
    ActiveLow,
}

/// Timer mode, LVT timer bits 18:17.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TimerMode {
    /// Count down once from the initial count.
    OneShot = 0b00,
    /// Reload the initial count and count down again, forever.
    Periodic = 0b01,
    /// Fire when the TSC reaches IA32_TSC_DEADLINE (CPUID.1:ECX bit 24).
    TscDeadline = 0b10,
}

/// An LVT register value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Lvt(u32);

const MASK_BIT: u32 = 1 << 16;
const DELIVERY_SHIFT: u32 = 8;
const DELIVERY_MASK: u32 = 0b111 << DELIVERY_SHIFT;
const POLARITY_BIT: u32 = 1 << 13;
const TRIGGER_BIT: u32 = 1 << 15;
const TIMER_SHIFT: u32 = 17;
const TIMER_MASK: u32 = 0b11 << TIMER_SHIFT;

impl Lvt {
    /// Masked, vector 0, fixed, one-shot: the "off" value the bring-up
    /// writes to every entry it does not use.
    pub const MASKED: Self = Self(MASK_BIT);

    /// An unmasked fixed-delivery entry for `vector`.
    pub const fn fixed(vector: Vector) -> Self {
        Self(vector.get() as u32)
    }

    /// Sets or clears the mask bit (16).
    pub const fn with_mask(self, masked: bool) -> Self {
        if masked {
            Self(self.0 | MASK_BIT)
        } else {
            Self(self.0 & !MASK_BIT)
        }
    }

    /// Replaces the delivery mode (bits 10:8).
    pub const fn with_delivery_mode(self, mode: LvtDeliveryMode) -> Self {
        Self((self.0 & !DELIVERY_MASK) | ((mode as u32) << DELIVERY_SHIFT))
    }

    /// Replaces the pin polarity (bit 13; LINT0/LINT1 only).
    pub const fn with_polarity(self, polarity: Polarity) -> Self {
        match polarity {
            Polarity::ActiveHigh => Self(self.0 & !POLARITY_BIT),
            Polarity::ActiveLow => Self(self.0 | POLARITY_BIT),
        }
    }

    /// Replaces the trigger mode (bit 15; LINT0/LINT1 only).
    pub const fn with_trigger(self, trigger: TriggerMode) -> Self {
        match trigger {
            TriggerMode::Edge => Self(self.0 & !TRIGGER_BIT),
            TriggerMode::Level => Self(self.0 | TRIGGER_BIT),
        }
    }

    /// Replaces the timer mode (bits 18:17; LVT timer only).
    pub const fn with_timer_mode(self, mode: TimerMode) -> Self {
        Self((self.0 & !TIMER_MASK) | ((mode as u32) << TIMER_SHIFT))
    }

    /// The raw value.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// An entry from a raw value (e.g. one read back).
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The vector field.
    pub const fn vector(self) -> u8 {
        self.0 as u8
    }

    /// Whether the mask bit is set.
    pub const fn is_masked(self) -> bool {
        self.0 & MASK_BIT != 0
    }

    /// The timer mode field, or `None` for the reserved encoding 0b11.
    pub const fn timer_mode(self) -> Option<TimerMode> {
        match (self.0 & TIMER_MASK) >> TIMER_SHIFT {
            0b00 => Some(TimerMode::OneShot),
            0b01 => Some(TimerMode::Periodic),
            0b10 => Some(TimerMode::TscDeadline),
            _ => None,
        }
    }
}

/// Timer divide configuration (register 0x83E, bits 3, 1:0; bit 2 is
/// reserved). The timer counts at the APIC bus / crystal clock divided by
/// this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TimerDivide {
    /// Divide by 1.
    By1 = 0b1011,
    /// Divide by 2.
    By2 = 0b0000,
    /// Divide by 4.
    By4 = 0b0001,
    /// Divide by 8.
    By8 = 0b0010,
    /// Divide by 16.
    By16 = 0b0011,
    /// Divide by 32.
    By32 = 0b1000,
    /// Divide by 64.
    By64 = 0b1001,
    /// Divide by 128.
    By128 = 0b1010,
}

impl TimerDivide {
    /// The register encoding.
    pub const fn bits(self) -> u32 {
        self as u32
    }

    /// The divisor.
    pub const fn divisor(self) -> u32 {
        match self {
            Self::By1 => 1,
            Self::By2 => 2,
            Self::By4 => 4,
            Self::By8 => 8,
            Self::By16 => 16,
            Self::By32 => 32,
            Self::By64 => 64,
            Self::By128 => 128,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Vector = Vector::new(0x30).unwrap();

    #[test]
    fn field_bit_positions_match_the_sdm() {
        assert_eq!(Lvt::MASKED.bits(), 0x0001_0000);
        assert_eq!(Lvt::fixed(V).bits(), 0x30);
        assert_eq!(Lvt::fixed(V).with_mask(true).bits(), 0x0001_0030);
        assert_eq!(Lvt::MASKED.with_mask(false).bits(), 0);
        assert_eq!(
            Lvt::fixed(V).with_polarity(Polarity::ActiveLow).bits(),
            0x2030
        );
        assert_eq!(
            Lvt::fixed(V).with_trigger(TriggerMode::Level).bits(),
            0x8030
        );
    }

    #[test]
    fn delivery_modes_match_the_sdm() {
        let at = |m| Lvt::MASKED.with_delivery_mode(m).bits() & 0x700;
        assert_eq!(at(LvtDeliveryMode::Fixed), 0x000);
        assert_eq!(at(LvtDeliveryMode::Smi), 0x200);
        assert_eq!(at(LvtDeliveryMode::Nmi), 0x400);
        assert_eq!(at(LvtDeliveryMode::Init), 0x500);
        assert_eq!(at(LvtDeliveryMode::ExtInt), 0x700);
        // The BIOS virtual-wire setup this driver undoes: LINT0 ExtINT,
        // LINT1 NMI, both unmasked.
        assert_eq!(
            Lvt::from_bits(0)
                .with_delivery_mode(LvtDeliveryMode::ExtInt)
                .bits(),
            0x700
        );
        assert_eq!(
            Lvt::from_bits(0)
                .with_delivery_mode(LvtDeliveryMode::Nmi)
                .bits(),
            0x400
        );
    }

    #[test]
    fn timer_modes_are_bits_18_17() {
        assert_eq!(
            Lvt::fixed(V).with_timer_mode(TimerMode::OneShot).bits(),
            0x0000_0030
        );
        assert_eq!(
            Lvt::fixed(V).with_timer_mode(TimerMode::Periodic).bits(),
            0x0002_0030
        );
        assert_eq!(
            Lvt::fixed(V).with_timer_mode(TimerMode::TscDeadline).bits(),
            0x0004_0030
        );
        let lvt = Lvt::fixed(V).with_timer_mode(TimerMode::TscDeadline);
        assert_eq!(
            lvt.with_timer_mode(TimerMode::Periodic).timer_mode(),
            Some(TimerMode::Periodic)
        );
        assert_eq!(Lvt::from_bits(0x0006_0000).timer_mode(), None);
    }

    #[test]
    fn getters_read_back() {
        let lvt = Lvt::fixed(V)
            .with_mask(true)
            .with_timer_mode(TimerMode::Periodic);
        assert_eq!(lvt.vector(), 0x30);
        assert!(lvt.is_masked());
        assert_eq!(lvt.timer_mode(), Some(TimerMode::Periodic));
        assert!(!Lvt::fixed(V).is_masked());
    }

    #[test]
    fn divide_encodings_match_the_sdm() {
        use TimerDivide::*;
        let table = [
            (By2, 0b0000, 2),
            (By4, 0b0001, 4),
            (By8, 0b0010, 8),
            (By16, 0b0011, 16),
            (By32, 0b1000, 32),
            (By64, 0b1001, 64),
            (By128, 0b1010, 128),
            (By1, 0b1011, 1),
        ];
        for (d, bits, div) in table {
            assert_eq!(d.bits(), bits, "{d:?}");
            assert_eq!(d.divisor(), div, "{d:?}");
            assert_eq!(d.bits() & 0b0100, 0, "bit 2 is reserved");
        }
    }
}
