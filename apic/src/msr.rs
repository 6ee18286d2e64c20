//! The one small trait every register access goes through.
//!
//! In x2APIC mode the whole local APIC is MSRs, so a driver generic over
//! [`MsrAccess`] is a driver whose every hardware effect can be recorded: the
//! host tests run the real bring-up, IPI, timer and error code against
//! `mock::MockMsr` (feature `mock`) and compare the access log with the
//! SDM's sequences. [`CpuMsr`] is the real thing: `rdmsr`/`wrmsr` on the CPU
//! that executes the call, compiled only for x86_64.
//!
//! # Where the safety obligations sit
//!
//! [`MsrAccess::read`] and [`MsrAccess::write`] are `unsafe fn`s: an
//! arbitrary MSR write can break any invariant in the system (EFER, the
//! GS base...). The driver discharges that obligation once, when a handle is
//! built ([`LocalApic::enable`](crate::LocalApic::enable),
//! [`IpiSender::new`](crate::IpiSender::new)), and after that only ever
//! touches the handful of registers in [`regs`](crate::regs) with values the
//! typed encodings produced.
//!
//! The methods take `&self`: a WRMSR has no state a Rust borrow could
//! protect. Exclusivity for multi-access sequences (bring-up, timer
//! programming, INIT/SIPI) comes from `&mut LocalApic` instead, while
//! single-access operations (EOI, one IPI) stay usable through `&self` from
//! an interrupt handler.

/// Read and write model-specific registers of the current CPU.
pub trait MsrAccess {
    /// Reads MSR `msr` (RDMSR).
    ///
    /// # Safety
    ///
    /// `msr` must exist and be readable in the current CPU state (an x2APIC
    /// register additionally needs x2APIC mode enabled), or the CPU raises
    /// #GP; the read must have no side effect the caller has not accounted
    /// for.
    unsafe fn read(&self, msr: u32) -> u64;

    /// Writes `value` to MSR `msr` (WRMSR).
    ///
    /// # Safety
    ///
    /// `msr` must exist and accept `value` in the current CPU state (no
    /// reserved bits; x2APIC mode for an x2APIC register), and the write's
    /// effect on the machine (interrupt routing, another CPU being reset...)
    /// must not break an invariant the rest of the system relies on.
    unsafe fn write(&self, msr: u32, value: u64);

    /// Makes every earlier store globally visible before any later MSR
    /// write takes effect.
    ///
    /// Needed because WRMSR to x2APIC registers is *not* serializing: SDM
    /// Vol. 3A, "MSR Access in x2APIC Mode", says such a write may complete
    /// before all preceding stores are globally visible, and that a fence
    /// in front of it prevents this (older editions name MFENCE; Linux uses
    /// `MFENCE; LFENCE` since "x86/apic: Add extra serialization for
    /// non-serializing MSRs", because MFENCE alone does not keep the WRMSR
    /// from executing early). The driver calls this before every IPI so an
    /// event written to shared memory is visible before the target CPU takes
    /// the interrupt, and between switching the LVT timer to TSC-deadline
    /// mode and writing IA32_TSC_DEADLINE. (AMD does not need it; the cost,
    /// tens of cycles, is kept for simplicity.)
    fn wrmsr_fence(&self);
}

/// `rdmsr`/`wrmsr` on the CPU that runs the call.
///
/// A zero-sized, `Copy`, `Send + Sync` value: it names no particular CPU, so
/// holding it grants nothing; the `unsafe` methods carry the whole contract.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuMsr;

#[cfg(target_arch = "x86_64")]
impl MsrAccess for CpuMsr {
    #[inline]
    unsafe fn read(&self, msr: u32) -> u64 {
        // SAFETY: the caller upholds `MsrAccess::read`'s contract, which is
        // exactly `Msr::read`'s (the MSR exists and reading it is harmless).
        unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
    }

    #[inline]
    unsafe fn write(&self, msr: u32, value: u64) {
        let mut reg = x86_64::registers::model_specific::Msr::new(msr);
        // SAFETY: the caller upholds `MsrAccess::write`'s contract, which is
        // exactly `Msr::write`'s (the MSR exists, accepts `value`, and the
        // effect is accounted for).
        unsafe { reg.write(value) }
    }

    #[inline]
    fn wrmsr_fence(&self) {
        // SAFETY: MFENCE and LFENCE only order memory accesses and
        // instruction execution; they read and write no register, flag or
        // memory location. Not `nomem`, on purpose: the asm must also be a
        // compiler barrier so earlier stores are emitted before it. Inline
        // asm rather than `_mm_mfence` because `x86_64-unknown-none` builds
        // without SSE2 enabled, and these instructions work regardless.
        unsafe { core::arch::asm!("mfence", "lfence", options(nostack, preserves_flags)) }
    }
}
