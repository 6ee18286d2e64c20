//! The crate's one error type.
//!
//! Every message names the problem and, where one exists, the fix, because
//! the demo kernel turns these values straight into a panic message on the
//! serial console: "this CPU has no x2APIC" is useful at 3 a.m., a page fault
//! at `0xfee0_0300` is not.

use core::fmt;

use crate::esr::Esr;
use crate::icr::Icr;

/// Everything that can go wrong in the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApicError {
    /// CPUID.1:ECX bit 21 is clear. The driver never falls back to the
    /// memory-mapped xAPIC.
    NoX2Apic,
    /// A vector below 32: 0–15 are illegal for the APIC (the ESR reports
    /// them) and 16–31 are the CPU's exception vectors.
    InvalidVector {
        /// The rejected vector.
        vector: u8,
    },
    /// A start-up (SIPI) trampoline address the architecture cannot reach:
    /// not 4 KiB aligned, at or above 1 MiB, or in the reserved page range
    /// 0xA0000–0xBFFFF.
    InvalidStartupAddress {
        /// The rejected physical address.
        addr: u64,
    },
    /// The error status register reported a send-side error after an IPI.
    SendFailed {
        /// The IPI that was sent.
        icr: Icr,
        /// The ESR value read after the send.
        esr: Esr,
    },
    /// A timer operation needs a calibrated APIC timer frequency and none
    /// has been measured or set.
    TimerNotCalibrated,
    /// TSC-deadline mode was requested but CPUID.1:ECX bit 24 is clear.
    NoTscDeadline,
    /// A TSC-deadline operation needs the TSC frequency and none has been
    /// measured or set.
    TscNotCalibrated,
    /// A calibration window of zero microseconds was requested.
    ZeroCalibrationWindow,
    /// The counter under calibration did not move during the window.
    TimerNotCounting,
    /// The APIC timer counted all the way down during the calibration
    /// window, so its rate is unknown.
    CalibrationOverflow {
        /// The window that was too long, in microseconds.
        window_us: u32,
    },
    /// A timer period does not fit the 32-bit initial-count register at the
    /// calibrated rate, or rounds down to zero ticks.
    TimerPeriodOutOfRange {
        /// The requested period, in microseconds.
        micros: u64,
    },
}

impl fmt::Display for ApicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoX2Apic => f.write_str(
                "this CPU has no x2APIC (CPUID.1:ECX bit 21 is clear); the event layer \
                 requires x2APIC and will not fall back to xAPIC (under QEMU use \
                 `-cpu max` or `-cpu qemu64,+x2apic`)",
            ),
            Self::InvalidVector { vector } => write!(
                f,
                "interrupt vector {vector:#04x} is not usable: vectors 0x00-0x0f are illegal \
                 for the APIC and 0x10-0x1f are reserved for CPU exceptions; use 0x20-0xff"
            ),
            Self::InvalidStartupAddress { addr } => write!(
                f,
                "AP start-up address {addr:#x} is not reachable by a STARTUP IPI: it must be \
                 4 KiB aligned, below 1 MiB and outside 0xa0000-0xbffff"
            ),
            Self::SendFailed { icr, esr } => write!(
                f,
                "sending IPI (ICR {:#018x}) failed: the APIC error status register reads \
                 {:#x} ({esr:?})",
                icr.bits(),
                esr.bits()
            ),
            Self::TimerNotCalibrated => f.write_str(
                "the APIC timer frequency is unknown: calibrate it (or copy the BSP's \
                 calibration) before starting the timer",
            ),
            Self::NoTscDeadline => f.write_str(
                "this CPU has no TSC-deadline timer (CPUID.1:ECX bit 24 is clear); use the \
                 one-shot or periodic APIC timer instead",
            ),
            Self::TscNotCalibrated => f.write_str(
                "the TSC frequency is unknown: calibrate it (or set it) before arming a \
                 TSC deadline relative to now",
            ),
            Self::ZeroCalibrationWindow => {
                f.write_str("a timer calibration window must be at least 1 microsecond")
            }
            Self::TimerNotCounting => f.write_str(
                "the counter under calibration did not advance during the calibration \
                 window; is the caller's delay really waiting?",
            ),
            Self::CalibrationOverflow { window_us } => write!(
                f,
                "the APIC timer ran down to zero within the {window_us} us calibration window; \
                 use a shorter window"
            ),
            Self::TimerPeriodOutOfRange { micros } => write!(
                f,
                "a timer period of {micros} us does not fit the APIC timer's 32-bit count at \
                 the calibrated rate (or is shorter than one tick)"
            ),
        }
    }
}

impl core::error::Error for ApicError {}
