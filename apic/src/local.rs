//! The per-CPU handle: bring-up, IPIs, EOI, error status, AP start-up.
//!
//! # Why not `x2apic::LocalApic`
//!
//! The `x2apic` crate's `LocalApic::enable()` writes 0 to LVT LINT0/LINT1,
//! which *unmasks* them (the legacy 8259 then delivers the PIT on vector 8,
//! which looks like a double fault), and starts a periodic timer with an
//! initial count of 10,000,000 that nobody asked for. It also enters x2APIC
//! mode by setting EXTD alone, which raises #GP when the firmware left the
//! APIC disabled, and its registers are hard-wired to `x86_64::Msr`, so no
//! sequence of it can be observed on the host. This handle does its own
//! bring-up through [`MsrAccess`], in the order below.
//!
//! # Bring-up ([`LocalApic::enable`])
//!
//! 1. Refuse a CPU without x2APIC ([`ApicError::NoX2Apic`]) before touching
//!    any APIC register. No xAPIC fallback.
//! 2. IA32_APIC_BASE: into x2APIC mode by the legal transitions (see
//!    [`ApicBase::x2apic_enable_writes`]).
//! 3. Read the version register for the number of LVT entries (writing an
//!    absent LVT MSR raises #GP).
//! 4. SVR: spurious vector + software enable. First, because while the APIC
//!    is software-disabled every LVT mask bit is forced set and writes that
//!    clear it are dropped.
//! 5. TPR = 0: accept every interrupt class.
//! 6. Timer off: LVT timer masked (one-shot mode, which also disarms a
//!    TSC deadline), initial count 0.
//! 7. LINT0 and LINT1 masked. The BIOS leaves them as virtual wire (LINT0
//!    ExtINT from the 8259, LINT1 NMI); masked, the 8259 cannot reach the CPU
//!    even if [`disable_legacy_pic`](crate::pic::disable_legacy_pic) was
//!    forgotten.
//! 8. Performance-counter, thermal and CMCI entries masked if present.
//! 9. ESR cleared (stale errors from firmware discarded), then the error
//!    LVT unmasked on the error vector.
//!
//! All of it runs with interrupts disabled, so the order only matters to the
//! APIC itself (steps 2, 3, 4), not to interrupt delivery.
//!
//! # Interrupt handler duties
//!
//! - Every fixed interrupt (IPI, timer, error): call [`LocalApic::eoi`]
//!   once, before `iretq`.
//! - The **spurious** vector: do nothing and return; *no EOI* (the
//!   in-service register has no bit for it, see [`crate::svr`]).
//! - The **error** vector: [`LocalApic::read_and_clear_esr`], report, EOI.
//! - NMI: no EOI (NMIs do not go through the in-service register).

use core::marker::PhantomData;

use crate::base::ApicBase;
use crate::cpuid::CpuFeatures;
use crate::delay::Delay;
use crate::error::ApicError;
use crate::esr::Esr;
use crate::icr::Icr;
use crate::lvt::Lvt;
use crate::msr::MsrAccess;
use crate::regs;
use crate::svr::Svr;
use crate::timer::{TimerFrequency, TscFrequency};
use crate::vector::{StartupPage, Vector};

/// How long INIT stays asserted before the first STARTUP IPI (SDM Vol. 3A,
/// "Typical BSP Initialization Sequence"; MP specification B.4).
pub const INIT_DELAY_US: u32 = 10_000;

/// The wait after each STARTUP IPI.
pub const SIPI_DELAY_US: u32 = 200;

/// The vectors a CPU's APIC is brought up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApicConfig {
    /// Delivered for spurious interrupts; its handler must not EOI.
    /// Conventionally 0xFF (old parts hard-wire the low 4 bits to 1).
    pub spurious_vector: Vector,
    /// Delivered when the APIC detects an error (ESR).
    pub error_vector: Vector,
}

impl ApicConfig {
    /// Spurious 0xFF, error 0xFE.
    pub const DEFAULT: Self = Self {
        spurious_vector: Vector::new(0xFF).unwrap(),
        error_vector: Vector::new(0xFE).unwrap(),
    };
}

impl Default for ApicConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The local APIC of the CPU this value was created on, in x2APIC mode.
///
/// Neither `Send` nor `Sync`: every MSR access reaches the APIC of
/// whichever CPU executes it, so the handle must stay on its CPU (keep it
/// in per-CPU data). For sending IPIs from code that may migrate, use
/// [`IpiSender`](crate::IpiSender) instead.
///
/// Methods that perform one MSR write (EOI, a fixed IPI) take `&self`, so
/// an interrupt handler can use them through a shared reference while the
/// interrupted code holds one too; multi-step sequences (timer programming,
/// AP start-up) take `&mut self`.
#[derive(Debug)]
pub struct LocalApic<M: MsrAccess> {
    pub(crate) msr: M,
    features: CpuFeatures,
    max_lvt: u8,
    is_bsp: bool,
    pub(crate) timer_freq: Option<TimerFrequency>,
    pub(crate) tsc_freq: Option<TscFrequency>,
    _not_send_sync: PhantomData<*const ()>,
}

#[cfg(target_arch = "x86_64")]
static_assertions::assert_not_impl_any!(LocalApic<crate::CpuMsr>: Send, Sync);

impl<M: MsrAccess> LocalApic<M> {
    /// Checks for x2APIC and brings this CPU's local APIC up in x2APIC mode
    /// (sequence in the [module docs](self)). The timer is left off.
    ///
    /// Returns [`ApicError::NoX2Apic`] without touching any register if
    /// `features.x2apic` is false.
    ///
    /// # Safety
    ///
    /// - `msr` accesses the MSRs of the CPU running this call, in ring 0,
    ///   and `features` was detected on this CPU.
    /// - Interrupts are disabled on this CPU, and IDT entries exist for
    ///   `config`'s vectors before they are enabled again.
    /// - The returned handle is the only code programming this CPU's local
    ///   APIC from now on (one handle per CPU; it cannot leave the CPU since
    ///   it is `!Send`).
    pub unsafe fn enable(
        msr: M,
        features: CpuFeatures,
        config: &ApicConfig,
    ) -> Result<Self, ApicError> {
        if !features.x2apic {
            return Err(ApicError::NoX2Apic);
        }

        // SAFETY: this and every access below: the caller guarantees ring 0
        // on the CPU `msr` reaches, with x2APIC support (checked above) and
        // interrupts off. IA32_APIC_BASE always exists; the writes follow
        // the SDM's legal transitions, so the x2APIC registers touched
        // afterwards are accessible; every value written comes from the
        // typed encodings and sets no reserved bit.
        let base = ApicBase::from_bits(unsafe { msr.read(regs::ApicBase::MSR) });
        for step in base.x2apic_enable_writes().into_iter().flatten() {
            // SAFETY: see above.
            unsafe { msr.write(regs::ApicBase::MSR, step.bits()) };
        }

        // SAFETY: x2APIC mode is on; the version register is readable.
        let version = unsafe { msr.read(regs::Version::MSR) };
        let max_lvt = (version >> 16) as u8;

        let svr = Svr::new(config.spurious_vector).with_enabled(true);
        let masked = u64::from(Lvt::MASKED.bits());
        // SAFETY: see above; all these registers exist in every x2APIC.
        unsafe {
            msr.write(regs::Svr::MSR, u64::from(svr.bits()));
            msr.write(regs::Tpr::MSR, 0);
            msr.write(regs::LvtTimer::MSR, masked);
            msr.write(regs::TimerInitialCount::MSR, 0);
            msr.write(regs::LvtLint0::MSR, masked);
            msr.write(regs::LvtLint1::MSR, masked);
        }
        // The optional LVT entries, in the order the version register's
        // "max LVT entry" adds them (Linux's `clear_local_APIC` reads it
        // the same way: >= 4 perf counters, >= 5 thermal, >= 6 CMCI).
        for (min, reg) in [
            (4, regs::LvtPerf::MSR),
            (5, regs::LvtThermal::MSR),
            (6, regs::LvtCmci::MSR),
        ] {
            if max_lvt >= min {
                // SAFETY: the entry exists (max LVT says so); masking it
                // only stops interrupts.
                unsafe { msr.write(reg, masked) };
            }
        }

        let apic = Self {
            msr,
            features,
            max_lvt,
            is_bsp: base.is_bsp(),
            timer_freq: None,
            tsc_freq: None,
            _not_send_sync: PhantomData,
        };
        let _stale = apic.read_and_clear_esr();
        let error_lvt = Lvt::fixed(config.error_vector);
        // SAFETY: see above; the caller provides a handler for the vector.
        unsafe {
            apic.msr
                .write(regs::LvtError::MSR, u64::from(error_lvt.bits()))
        };
        Ok(apic)
    }

    /// This CPU's x2APIC ID (the full 32 bits of MSR 0x802).
    pub fn id(&self) -> u32 {
        // SAFETY: `enable` put this CPU in x2APIC mode; the ID register is
        // always readable.
        unsafe { self.msr.read(regs::ApicId::MSR) as u32 }
    }

    /// Whether this is the bootstrap processor (IA32_APIC_BASE bit 8 as
    /// read at bring-up).
    pub fn is_bsp(&self) -> bool {
        self.is_bsp
    }

    /// The CPU features the handle was created with.
    pub fn features(&self) -> CpuFeatures {
        self.features
    }

    /// "Max LVT entry" from the version register: the number of LVT
    /// entries minus one.
    pub fn max_lvt_entry(&self) -> u8 {
        self.max_lvt
    }

    /// Signals end of interrupt: writes 0 to MSR 0x80B.
    ///
    /// Call once at the end of every handler of a fixed-delivery interrupt;
    /// never from the spurious vector's handler or for an NMI.
    #[inline]
    pub fn eoi(&self) {
        // SAFETY: x2APIC mode is on (`enable`). Zero is the only value the
        // EOI register accepts in x2APIC mode. An EOI without an interrupt
        // in service is ignored by the APIC.
        unsafe { self.msr.write(regs::Eoi::MSR, 0) }
    }

    /// Reads the errors latched since the last call and re-arms the error
    /// interrupt (write 0, then read; see [`crate::esr`]).
    ///
    /// If an interrupt handler on this CPU reads the ESR between the two
    /// accesses, the errors are reported to it instead of to this caller:
    /// each error is reported once, to one of them.
    pub fn read_and_clear_esr(&self) -> Esr {
        // SAFETY: x2APIC mode is on; 0 is the value x2APIC requires for ESR
        // writes, and the write only latches error bits.
        unsafe { self.msr.write(regs::Esr::MSR, 0) };
        // SAFETY: as above; the ESR is readable.
        let raw = unsafe { self.msr.read(regs::Esr::MSR) };
        Esr::from_bits_retain(raw as u32)
    }

    /// Sends `vector` to the CPU with x2APIC ID `apic_id`.
    ///
    /// Fire and forget: x2APIC has no delivery status to wait for, and the
    /// only send error a modern APIC reports (illegal vector) is ruled out
    /// by [`Vector`]. An ID no CPU has is dropped silently by the hardware.
    #[inline]
    pub fn send_fixed(&self, apic_id: u32, vector: Vector) {
        // SAFETY: x2APIC is enabled on this CPU (`enable`); a fixed IPI with
        // a legal vector only runs the target's handler for it.
        unsafe { send_icr(&self.msr, Icr::fixed(apic_id, vector)) }
    }

    /// Sends `vector` to this CPU through the x2APIC SELF IPI register
    /// (MSR 0x83F), which is cheaper than an ICR write with the "self"
    /// shorthand.
    #[inline]
    pub fn send_self(&self, vector: Vector) {
        // SAFETY: as `send_fixed`; the SELF IPI register exists in x2APIC
        // mode and takes the vector in bits 7:0.
        unsafe { send_self_ipi(&self.msr, vector) }
    }

    /// Sends `vector` to every CPU but this one (shorthand "all excluding
    /// self").
    #[inline]
    pub fn broadcast_fixed(&self, vector: Vector) {
        // SAFETY: as `send_fixed`.
        unsafe { send_icr(&self.msr, Icr::fixed_all_excluding_self(vector)) }
    }

    /// Sends an NMI to `apic_id`.
    ///
    /// # Safety
    ///
    /// The target has an NMI handler installed that is safe to run at any
    /// instruction boundary, including inside its other interrupt handlers
    /// and with interrupts disabled.
    pub unsafe fn send_nmi(&self, apic_id: u32) {
        // SAFETY: x2APIC is on; the caller vouches for the NMI's effect.
        unsafe { send_icr(&self.msr, Icr::nmi(apic_id)) }
    }

    /// Writes an arbitrary ICR value: any delivery mode, shorthand or
    /// destination mode. No ESR check (see [`LocalApic::start_ap`] for the
    /// checked sequence).
    ///
    /// # Safety
    ///
    /// `icr` sets no bit of [`Icr::RESERVED`] (that raises #GP), and its
    /// effect on the destination CPUs is sound: a fixed vector has a handler
    /// everywhere it lands, an NMI meets [`LocalApic::send_nmi`]'s contract,
    /// an INIT resets only CPUs that run nothing the system depends on, a
    /// STARTUP points at a valid trampoline, an SMI is expected by firmware.
    pub unsafe fn send_icr(&self, icr: Icr) {
        // SAFETY: x2APIC is on; the caller vouches for the value.
        unsafe { send_icr(&self.msr, icr) }
    }

    /// Starts the application processor `apic_id` at `page` with the
    /// INIT / INIT de-assert / STARTUP / STARTUP sequence, checking the ESR
    /// after each IPI.
    ///
    /// Exact order (each "send" is `wrmsr_fence`, then one write of MSR
    /// 0x830; each "check" is ESR write 0, read, and
    /// [`ApicError::SendFailed`] if a send-side bit is set):
    ///
    /// 1. ESR write 0, read: discard stale errors;
    /// 2. send INIT assert; delay [`INIT_DELAY_US`]; check;
    /// 3. send INIT de-assert; check;
    /// 4. send STARTUP(page); delay [`SIPI_DELAY_US`]; check;
    /// 5. send STARTUP(page); delay [`SIPI_DELAY_US`]; check.
    ///
    /// The second STARTUP is what the SDM's and the MP specification's
    /// algorithm do; a CPU that already left wait-for-SIPI ignores it, so
    /// the trampoline runs once. Returns when the sequence is done; waiting
    /// for the AP to report in (with a timeout) is the kernel's job.
    ///
    /// # Safety
    ///
    /// - `apic_id` is an application processor that runs nothing the
    ///   system depends on (INIT resets it), and not this CPU.
    /// - `page.addr()` holds a real-mode trampoline that stays intact until
    ///   the AP reports in, and everything it jumps to is set up for it
    ///   (stack, page tables, per-CPU data).
    /// - Run with interrupts disabled, or accept that an error-interrupt
    ///   handler may consume an error before this check sees it.
    pub unsafe fn start_ap<D: Delay + ?Sized>(
        &mut self,
        apic_id: u32,
        page: StartupPage,
        delay: &mut D,
    ) -> Result<(), ApicError> {
        let _stale = self.read_and_clear_esr();
        // SAFETY: this and the three sends below: x2APIC is on; the caller
        // guarantees the target may be reset and started at `page`.
        unsafe { send_icr(&self.msr, Icr::init_assert(apic_id)) };
        delay.delay_us(INIT_DELAY_US);
        self.check_send(Icr::init_assert(apic_id))?;

        // SAFETY: as above.
        unsafe { send_icr(&self.msr, Icr::init_deassert(apic_id)) };
        self.check_send(Icr::init_deassert(apic_id))?;

        let sipi = Icr::startup(apic_id, page);
        for _ in 0..2 {
            // SAFETY: as above.
            unsafe { send_icr(&self.msr, sipi) };
            delay.delay_us(SIPI_DELAY_US);
            self.check_send(sipi)?;
        }
        Ok(())
    }

    /// ESR check after sending `icr`.
    fn check_send(&self, icr: Icr) -> Result<(), ApicError> {
        let esr = self.read_and_clear_esr();
        if esr.has_send_error() {
            Err(ApicError::SendFailed { icr, esr })
        } else {
            Ok(())
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl LocalApic<crate::CpuMsr> {
    /// [`LocalApic::enable`] on the current CPU with the real MSRs and the
    /// features CPUID reports here. The demo kernel calls this first thing
    /// on every CPU and panics with the error's `Display` text on
    /// [`ApicError::NoX2Apic`].
    ///
    /// # Safety
    ///
    /// As [`LocalApic::enable`]: ring 0, interrupts disabled, handlers for
    /// `config`'s vectors installed before interrupts are enabled, one
    /// handle per CPU.
    pub unsafe fn enable_current_cpu(config: &ApicConfig) -> Result<Self, ApicError> {
        // SAFETY: `CpuMsr` reaches this CPU and the features are this CPU's;
        // the caller guarantees the rest.
        unsafe { Self::enable(crate::CpuMsr, CpuFeatures::detect(), config) }
    }
}

/// Sends one IPI: the store fence, then the ICR write.
///
/// # Safety
///
/// x2APIC mode is enabled on the CPU `msr` reaches, `icr` sets no reserved
/// bit, and its effect on the destinations is sound.
#[inline]
pub(crate) unsafe fn send_icr<M: MsrAccess + ?Sized>(msr: &M, icr: Icr) {
    // Event payloads written to shared memory must be visible before the
    // target can take the interrupt (see `MsrAccess::wrmsr_fence`).
    msr.wrmsr_fence();
    // SAFETY: forwarded to the caller.
    unsafe { msr.write(regs::Icr::MSR, icr.bits()) }
}

/// Sends `vector` to the current CPU through the SELF IPI register.
///
/// # Safety
///
/// x2APIC mode is enabled on the CPU `msr` reaches.
#[inline]
pub(crate) unsafe fn send_self_ipi<M: MsrAccess + ?Sized>(msr: &M, vector: Vector) {
    msr.wrmsr_fence();
    // SAFETY: forwarded to the caller; a legal vector in bits 7:0 is the
    // whole register.
    unsafe { msr.write(regs::SelfIpi::MSR, u64::from(vector.get())) }
}
