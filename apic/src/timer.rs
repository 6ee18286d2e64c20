//! The local APIC timer: calibration, one-shot, periodic, TSC-deadline.
//!
//! The APIC timer counts down at the APIC bus / crystal clock divided by
//! the divide configuration; the SDM does not give that clock's rate in a
//! form every CPU (or QEMU) reports, so it is measured: count down from
//! `u32::MAX` for a window timed by the caller's [`Delay`], read what is
//! left. One calibration serves every CPU of the machine (the timer clock is
//! shared), so APs copy the BSP's with [`LocalApic::set_timer_frequency`]
//! instead of each spending a window on it.
//!
//! TSC-deadline mode (CPUID.1:ECX bit 24) instead fires when the TSC reaches
//! an absolute value written to IA32_TSC_DEADLINE; it needs the TSC rate for
//! relative deadlines, measured the same way by [`LocalApic::calibrate_tsc`].
//! It is one-shot by nature: a tick handler re-arms it.
//!
//! Programming order follows the SDM: the LVT entry (mode, vector) is
//! written before the initial count, because writing the initial count is
//! what starts a one-shot or periodic count; switching the LVT mode disarms
//! whatever the previous mode had armed.

use crate::delay::Delay;
use crate::error::ApicError;
use crate::local::LocalApic;
use crate::lvt::{Lvt, TimerDivide, TimerMode};
use crate::msr::MsrAccess;
use crate::regs;
use crate::vector::Vector;

/// The divide configuration calibration uses and the timer then runs at.
/// Divide by 16 keeps a 32-bit count good for over a minute at QEMU's
/// 1 GHz APIC clock, and for hours at real bus clocks of 25–200 MHz, while
/// a tick is still well under a microsecond.
pub const CALIBRATION_DIVIDE: TimerDivide = TimerDivide::By16;

/// The calibrated rate of the APIC timer at a given divide configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerFrequency {
    ticks_per_ms: u64,
    divide: TimerDivide,
}

impl TimerFrequency {
    /// A rate known by other means (e.g. CPUID leaf 0x15, or another CPU's
    /// calibration).
    pub const fn new(ticks_per_ms: u64, divide: TimerDivide) -> Self {
        Self {
            ticks_per_ms,
            divide,
        }
    }

    /// Timer ticks per millisecond at [`TimerFrequency::divide`].
    pub const fn ticks_per_ms(self) -> u64 {
        self.ticks_per_ms
    }

    /// The divide configuration the rate holds for.
    pub const fn divide(self) -> TimerDivide {
        self.divide
    }

    /// The initial count for a period of `micros`: between 1 and
    /// `u32::MAX`, else [`ApicError::TimerPeriodOutOfRange`].
    pub fn count_for_us(self, micros: u64) -> Result<u32, ApicError> {
        let ticks = u128::from(self.ticks_per_ms) * u128::from(micros) / 1000;
        match u32::try_from(ticks) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ApicError::TimerPeriodOutOfRange { micros }),
        }
    }
}

/// The calibrated rate of the TSC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TscFrequency {
    ticks_per_ms: u64,
}

impl TscFrequency {
    /// A rate known by other means (CPUID leaf 0x15, the kernel's own
    /// calibration).
    pub const fn new(ticks_per_ms: u64) -> Self {
        Self { ticks_per_ms }
    }

    /// TSC ticks per millisecond.
    pub const fn ticks_per_ms(self) -> u64 {
        self.ticks_per_ms
    }

    /// TSC ticks in `micros`, saturating at `u64::MAX`.
    pub fn ticks_for_us(self, micros: u64) -> u64 {
        let ticks = u128::from(self.ticks_per_ms) * u128::from(micros) / 1000;
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }
}

/// Ticks per millisecond from `elapsed` ticks over `window_us`.
fn per_ms(elapsed: u64, window_us: u32) -> Result<u64, ApicError> {
    let per_ms = u128::from(elapsed) * 1000 / u128::from(window_us);
    match u64::try_from(per_ms) {
        Ok(0) => Err(ApicError::TimerNotCounting),
        Ok(n) => Ok(n),
        Err(_) => Ok(u64::MAX),
    }
}

impl<M: MsrAccess> LocalApic<M> {
    /// Measures the APIC timer against `delay` over `window_us`
    /// microseconds, stores the result in this handle and returns it.
    ///
    /// Accesses, in order: divide configuration = [`CALIBRATION_DIVIDE`];
    /// LVT timer masked (one-shot, so running out raises nothing); initial
    /// count `u32::MAX`; `delay.delay_us(window_us)`; read current count;
    /// initial count 0 (stopped). 10 000 µs is a good window. Run with
    /// interrupts disabled so the window is not stretched.
    ///
    /// Errors: [`ApicError::ZeroCalibrationWindow`] (before any access),
    /// [`ApicError::CalibrationOverflow`] if the count reached zero,
    /// [`ApicError::TimerNotCounting`] if it did not move.
    pub fn calibrate_timer<D: Delay + ?Sized>(
        &mut self,
        delay: &mut D,
        window_us: u32,
    ) -> Result<TimerFrequency, ApicError> {
        if window_us == 0 {
            return Err(ApicError::ZeroCalibrationWindow);
        }
        // SAFETY: x2APIC mode is on (`enable`); the timer registers exist in
        // every x2APIC and the LVT timer stays masked throughout, so the
        // count running out raises no interrupt.
        unsafe {
            self.msr.write(
                regs::TimerDivideConfig::MSR,
                u64::from(CALIBRATION_DIVIDE.bits()),
            );
            self.msr
                .write(regs::LvtTimer::MSR, u64::from(Lvt::MASKED.bits()));
            self.msr
                .write(regs::TimerInitialCount::MSR, u64::from(u32::MAX));
        }
        delay.delay_us(window_us);
        // SAFETY: as above.
        let left = unsafe { self.msr.read(regs::TimerCurrentCount::MSR) } as u32;
        // SAFETY: as above; an initial count of 0 stops the timer.
        unsafe { self.msr.write(regs::TimerInitialCount::MSR, 0) };

        if left == 0 {
            return Err(ApicError::CalibrationOverflow { window_us });
        }
        let freq = TimerFrequency::new(
            per_ms(u64::from(u32::MAX - left), window_us)?,
            CALIBRATION_DIVIDE,
        );
        self.timer_freq = Some(freq);
        Ok(freq)
    }

    /// Uses a rate measured elsewhere (typically the BSP's calibration).
    pub fn set_timer_frequency(&mut self, freq: TimerFrequency) {
        self.timer_freq = Some(freq);
    }

    /// The stored APIC timer rate, if calibrated or set.
    pub fn timer_frequency(&self) -> Option<TimerFrequency> {
        self.timer_freq
    }

    /// Fires `vector` once, `micros` from now.
    pub fn start_one_shot(&mut self, vector: Vector, micros: u64) -> Result<(), ApicError> {
        self.start_counting(vector, micros, TimerMode::OneShot)
    }

    /// Fires `vector` every `micros`, starting `micros` from now: the
    /// preemption tick.
    pub fn start_periodic(&mut self, vector: Vector, micros: u64) -> Result<(), ApicError> {
        self.start_counting(vector, micros, TimerMode::Periodic)
    }

    /// Divide configuration, LVT timer (unmasked, `mode`), initial count.
    fn start_counting(
        &mut self,
        vector: Vector,
        micros: u64,
        mode: TimerMode,
    ) -> Result<(), ApicError> {
        let freq = self.timer_freq.ok_or(ApicError::TimerNotCalibrated)?;
        let count = freq.count_for_us(micros)?;
        let lvt = Lvt::fixed(vector).with_timer_mode(mode);
        // SAFETY: x2APIC mode is on; the values come from the typed
        // encodings; the timer interrupt raises `vector`, like a fixed IPI.
        unsafe {
            self.msr.write(
                regs::TimerDivideConfig::MSR,
                u64::from(freq.divide().bits()),
            );
            self.msr.write(regs::LvtTimer::MSR, u64::from(lvt.bits()));
            self.msr
                .write(regs::TimerInitialCount::MSR, u64::from(count));
        }
        Ok(())
    }

    /// Stops the timer in every mode: disarms a TSC deadline (when the CPU
    /// has the feature; the MSR does not exist otherwise), masks the LVT
    /// entry (one-shot mode) and zeroes the initial count.
    pub fn stop_timer(&mut self) {
        if self.features().tsc_deadline {
            // SAFETY: the CPU has IA32_TSC_DEADLINE (CPUID.1:ECX bit 24);
            // writing 0 disarms it, and is ignored outside TSC-deadline mode.
            unsafe { self.msr.write(regs::TscDeadline::MSR, 0) };
        }
        // SAFETY: x2APIC mode is on; masking and a zero count only stop
        // interrupts.
        unsafe {
            self.msr
                .write(regs::LvtTimer::MSR, u64::from(Lvt::MASKED.bits()));
            self.msr.write(regs::TimerInitialCount::MSR, 0);
        }
    }

    /// Measures the TSC against `delay` over `window_us` microseconds
    /// (IA32_TIME_STAMP_COUNTER read before and after), stores the result
    /// and returns it.
    pub fn calibrate_tsc<D: Delay + ?Sized>(
        &mut self,
        delay: &mut D,
        window_us: u32,
    ) -> Result<TscFrequency, ApicError> {
        if window_us == 0 {
            return Err(ApicError::ZeroCalibrationWindow);
        }
        // SAFETY: IA32_TIME_STAMP_COUNTER exists on every x86_64 CPU and
        // reading it has no side effect.
        let t0 = unsafe { self.msr.read(regs::Tsc::MSR) };
        delay.delay_us(window_us);
        // SAFETY: as above.
        let t1 = unsafe { self.msr.read(regs::Tsc::MSR) };
        let freq = TscFrequency::new(per_ms(t1.wrapping_sub(t0), window_us)?);
        self.tsc_freq = Some(freq);
        Ok(freq)
    }

    /// Uses a TSC rate known elsewhere.
    pub fn set_tsc_frequency(&mut self, freq: TscFrequency) {
        self.tsc_freq = Some(freq);
    }

    /// The stored TSC rate, if calibrated or set.
    pub fn tsc_frequency(&self) -> Option<TscFrequency> {
        self.tsc_freq
    }

    /// Switches the timer to TSC-deadline mode on `vector`, disarmed; then
    /// arm it with [`LocalApic::set_tsc_deadline`] or
    /// [`LocalApic::arm_tsc_deadline_in`] (again from each tick's handler).
    ///
    /// After the LVT write comes [`MsrAccess::wrmsr_fence`]: the SDM
    /// requires a fence between the write that selects TSC-deadline mode
    /// and the first IA32_TSC_DEADLINE write (stated for xAPIC's MMIO LVT;
    /// kept in x2APIC mode, as Linux does, because IA32_TSC_DEADLINE is not
    /// an APIC register and the ordering of the two is otherwise unstated).
    pub fn enable_tsc_deadline(&mut self, vector: Vector) -> Result<(), ApicError> {
        if !self.features().tsc_deadline {
            return Err(ApicError::NoTscDeadline);
        }
        let lvt = Lvt::fixed(vector).with_timer_mode(TimerMode::TscDeadline);
        // SAFETY: x2APIC mode is on and the CPU supports TSC-deadline mode;
        // the timer raises `vector`, like a fixed IPI.
        unsafe { self.msr.write(regs::LvtTimer::MSR, u64::from(lvt.bits())) };
        self.msr.wrmsr_fence();
        Ok(())
    }

    /// Arms the TSC deadline at absolute TSC value `deadline` (0 disarms; a
    /// value in the past fires at once).
    pub fn set_tsc_deadline(&self, deadline: u64) -> Result<(), ApicError> {
        if !self.features().tsc_deadline {
            return Err(ApicError::NoTscDeadline);
        }
        // SAFETY: the CPU has IA32_TSC_DEADLINE; any value is valid.
        unsafe { self.msr.write(regs::TscDeadline::MSR, deadline) };
        Ok(())
    }

    /// Arms the TSC deadline `micros` from now (reads the TSC through
    /// IA32_TIME_STAMP_COUNTER) and returns the absolute deadline.
    pub fn arm_tsc_deadline_in(&mut self, micros: u64) -> Result<u64, ApicError> {
        if !self.features().tsc_deadline {
            return Err(ApicError::NoTscDeadline);
        }
        let freq = self.tsc_freq.ok_or(ApicError::TscNotCalibrated)?;
        // SAFETY: IA32_TIME_STAMP_COUNTER always exists; reading it has no
        // side effect.
        let now = unsafe { self.msr.read(regs::Tsc::MSR) };
        let deadline = now.saturating_add(freq.ticks_for_us(micros));
        self.set_tsc_deadline(deadline)?;
        Ok(deadline)
    }
}
