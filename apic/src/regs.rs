//! MSR addresses of the registers the driver touches.
//!
//! One unit struct per register with a `const MSR`, the way the `x86_64`
//! crate names its MSRs, so a call site reads `regs::Eoi::MSR` rather than a
//! bare `0x80B`. In x2APIC mode the local APIC's registers are the MSRs
//! 0x800–0x8FF: the xAPIC MMIO offset shifted right by 4, plus 0x800 (SDM
//! Vol. 3A, "x2APIC Register Address Space"). Two of them have no xAPIC
//! counterpart: the 64-bit ICR (0x830, one register instead of two) and
//! SELF IPI (0x83F).
//!
//! Only registers this crate uses are listed; the in-service, trigger-mode
//! and request bitmaps (0x810–0x827) are left out on purpose.
//!
//! These are plain `u32`s, not `x86_64::registers::model_specific::Msr`s,
//! because the [`MsrAccess`](crate::msr::MsrAccess) mock must be able to
//! record and compare them.

macro_rules! msr {
    ($(#[$doc:meta])* $name:ident = $addr:expr;) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl $name {
            /// The register's MSR address.
            pub const MSR: u32 = $addr;
        }
    };
}

msr! {
    /// IA32_TIME_STAMP_COUNTER: the TSC, read by the TSC calibration and by
    /// relative TSC deadlines.
    Tsc = 0x10;
}
msr! {
    /// IA32_APIC_BASE: enable (EN, bit 11), x2APIC mode (EXTD, bit 10), BSP
    /// (bit 8) and the xAPIC MMIO base. Not an APIC register: always
    /// accessible.
    ApicBase = 0x1B;
}
msr! {
    /// IA32_TSC_DEADLINE: the absolute TSC value at which a TSC-deadline
    /// timer fires; 0 disarms.
    TscDeadline = 0x6E0;
}
msr! {
    /// Local APIC ID (read-only; the full 32-bit x2APIC ID).
    ApicId = 0x802;
}
msr! {
    /// Local APIC version (read-only): version in bits 7:0, "max LVT entry"
    /// (number of LVT entries minus one) in bits 23:16.
    Version = 0x803;
}
msr! {
    /// Task priority register.
    Tpr = 0x808;
}
msr! {
    /// End of interrupt (write-only; a non-zero write raises #GP in x2APIC
    /// mode).
    Eoi = 0x80B;
}
msr! {
    /// Spurious interrupt vector register.
    Svr = 0x80F;
}
msr! {
    /// Error status register (write 0 to latch, then read; a non-zero write
    /// raises #GP in x2APIC mode).
    Esr = 0x828;
}
msr! {
    /// LVT corrected machine-check interrupt (present when max LVT >= 6).
    LvtCmci = 0x82F;
}
msr! {
    /// Interrupt command register: one 64-bit write sends an IPI.
    Icr = 0x830;
}
msr! {
    /// LVT timer.
    LvtTimer = 0x832;
}
msr! {
    /// LVT thermal sensor (present when max LVT >= 5).
    LvtThermal = 0x833;
}
msr! {
    /// LVT performance-monitoring counters (present when max LVT >= 4).
    LvtPerf = 0x834;
}
msr! {
    /// LVT LINT0 pin (where the 8259 is wired in virtual-wire mode).
    LvtLint0 = 0x835;
}
msr! {
    /// LVT LINT1 pin (usually the external NMI line).
    LvtLint1 = 0x836;
}
msr! {
    /// LVT error.
    LvtError = 0x837;
}
msr! {
    /// Timer initial count; writing it (re)starts a one-shot or periodic
    /// count, writing 0 stops the timer.
    TimerInitialCount = 0x838;
}
msr! {
    /// Timer current count (read-only).
    TimerCurrentCount = 0x839;
}
msr! {
    /// Timer divide configuration.
    TimerDivideConfig = 0x83E;
}
msr! {
    /// SELF IPI (write-only, x2APIC only): bits 7:0 are the vector.
    SelfIpi = 0x83F;
}

/// Whether `msr` is in the range the SDM reserves for the x2APIC
/// (0x800–0xBFF; the registers themselves are all below 0x900), where
/// RDMSR/WRMSR raise #GP unless IA32_APIC_BASE has both EN and EXTD set.
pub const fn is_x2apic_register(msr: u32) -> bool {
    matches!(msr, 0x800..=0xBFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SDM Vol. 3A, Table "Local APIC Register Address Map Supported by
    /// x2APIC", and Vol. 4 for the architectural MSRs.
    #[test]
    fn addresses_match_the_sdm() {
        assert_eq!(Tsc::MSR, 0x10);
        assert_eq!(ApicBase::MSR, 0x1B);
        assert_eq!(TscDeadline::MSR, 0x6E0);
        assert_eq!(ApicId::MSR, 0x802);
        assert_eq!(Version::MSR, 0x803);
        assert_eq!(Tpr::MSR, 0x808);
        assert_eq!(Eoi::MSR, 0x80B);
        assert_eq!(Svr::MSR, 0x80F);
        assert_eq!(Esr::MSR, 0x828);
        assert_eq!(LvtCmci::MSR, 0x82F);
        assert_eq!(Icr::MSR, 0x830);
        assert_eq!(LvtTimer::MSR, 0x832);
        assert_eq!(LvtThermal::MSR, 0x833);
        assert_eq!(LvtPerf::MSR, 0x834);
        assert_eq!(LvtLint0::MSR, 0x835);
        assert_eq!(LvtLint1::MSR, 0x836);
        assert_eq!(LvtError::MSR, 0x837);
        assert_eq!(TimerInitialCount::MSR, 0x838);
        assert_eq!(TimerCurrentCount::MSR, 0x839);
        assert_eq!(TimerDivideConfig::MSR, 0x83E);
        assert_eq!(SelfIpi::MSR, 0x83F);
    }

    /// The x2APIC MSR of an xAPIC register is 0x800 + (MMIO offset >> 4).
    #[test]
    fn x2apic_addresses_follow_the_mmio_offsets() {
        for (msr, mmio) in [
            (ApicId::MSR, 0x20),
            (Eoi::MSR, 0xB0),
            (Svr::MSR, 0xF0),
            (Esr::MSR, 0x280),
            (Icr::MSR, 0x300),
            (LvtTimer::MSR, 0x320),
            (LvtError::MSR, 0x370),
            (TimerDivideConfig::MSR, 0x3E0),
        ] {
            assert_eq!(msr, 0x800 + (mmio >> 4));
            assert!(is_x2apic_register(msr));
        }
        assert!(!is_x2apic_register(ApicBase::MSR));
        assert!(!is_x2apic_register(TscDeadline::MSR));
        assert!(!is_x2apic_register(0x7FF));
        assert!(is_x2apic_register(0xBFF));
        assert!(!is_x2apic_register(0xC00));
    }
}
