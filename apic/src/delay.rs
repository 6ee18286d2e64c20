//! The caller's clock: a busy-wait the driver borrows.
//!
//! The INIT/SIPI sequence needs 10 ms and 200 µs pauses and timer
//! calibration needs a known interval, but this crate owns no clock (the
//! APIC timer is the thing being calibrated). The kernel supplies one, e.g.
//! PIT channel 2 polling or a TSC loop with a known TSC frequency.

/// Busy-wait for at least a given time.
///
/// Implementations must work with interrupts disabled and must not use the
/// local APIC timer. Waiting longer than asked is fine for start-up; for
/// calibration the accuracy of the wait is the accuracy of the result.
pub trait Delay {
    /// Spins for at least `micros` microseconds.
    fn delay_us(&mut self, micros: u32);
}

/// Any `FnMut(u32)` is a delay, so a kernel can pass a closure.
impl<F: FnMut(u32)> Delay for F {
    fn delay_us(&mut self, micros: u32) {
        self(micros)
    }
}
