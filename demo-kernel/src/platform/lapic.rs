//! The local APIC of each CPU, through the `apic` crate: bring-up, IPIs,
//! EOI and the timer.
//!
//! Each CPU enables its own x2APIC ([`init_bsp`], [`init_ap`]) and keeps the
//! `apic::LocalApic` handle in its per-CPU data (the handle is `!Send`).
//! Sending needs no handle: in x2APIC mode an IPI is one MSR write on the
//! sending CPU, so [`send_ipi`] uses the crate's stateless `IpiSender`.
//!
//! The BSP also shuts the legacy 8259 PICs up (remapped to 0x20..0x30 and
//! masked, before the first `sti`) and calibrates the APIC timer against
//! the TSC; the APs reuse that calibration.
//!
//! Vectors the platform uses (scenarios pick theirs from 0x30..=0xdf):
//! [`TIMER_VECTOR`], [`WAKE_VECTOR`], [`IPI_TEST_VECTOR`], the APIC error
//! vector 0xfe and the spurious vector 0xff.

use apic::{
    ApicConfig, ApicError, CpuMsr, IpiSender, LocalApic, StartupPage, TimerFrequency, Vector,
};
use spin::Once;

use crate::platform::idt::{self, InterruptFrame};
use crate::platform::percpu;

/// The local APIC timer's vector (the tick, time.rs).
pub const TIMER_VECTOR: Vector = Vector::new(0xf0).unwrap();
/// An IPI that only wakes a halted CPU (jobs.rs); its handler does nothing.
pub const WAKE_VECTOR: Vector = Vector::new(0xf1).unwrap();
/// The vector of the IPI self-check (checks.rs).
pub const IPI_TEST_VECTOR: Vector = Vector::new(0xf2).unwrap();

/// Spurious 0xff (no EOI, see idt.rs) and error 0xfe.
const CONFIG: ApicConfig = ApicConfig::DEFAULT;

/// Window of the APIC timer calibration.
const CALIBRATION_US: u32 = 10_000;

/// The BSP's measurement of the APIC timer, shared with the APs.
static TIMER_FREQ: Once<TimerFrequency> = Once::new();

// SAFETY: `IpiSender::cpu` requires x2APIC mode on every CPU that sends
// with it and a handler for every vector sent. `send_ipi` below is the only
// user and checks the first (the sending CPU has recorded its APIC id,
// which happens right after it enabled x2APIC); every vector has an IDT
// entry, and one without a registered handler fails the run readably.
static IPI: IpiSender<CpuMsr> = unsafe { IpiSender::cpu() };

/// The APIC's delay source: a TSC busy-wait (time.rs).
fn delay(micros: u32) {
    crate::platform::time::delay_us(u64::from(micros));
}

/// Enables the x2APIC of the running CPU and keeps its handle. Interrupts
/// must be off; the IDT is loaded.
fn enable_this_cpu() -> Result<(), ApicError> {
    let cpu = percpu::current();
    // SAFETY: ring 0 on this CPU, interrupts off (callers run before their
    // `sti`), the IDT routes every vector including CONFIG's, and this is
    // the only handle of this CPU's APIC (each CPU calls this once).
    let mut lapic = unsafe { LocalApic::enable_current_cpu(&CONFIG) }?;
    if let Some(freq) = TIMER_FREQ.get() {
        lapic.set_timer_frequency(*freq);
    }
    cpu.set_apic_id(lapic.id());
    cpu.lapic.set(lapic);
    Ok(())
}

/// Brings up the BSP's interrupt controllers: the 8259s off, the x2APIC on,
/// the APIC timer calibrated, the platform vectors' handlers registered.
///
/// Returns the `apic` crate's error, e.g. [`ApicError::NoX2Apic`] on a CPU
/// model without x2APIC (whose message says what to do), for the caller to
/// report.
pub fn init_bsp() -> Result<(), ApicError> {
    // SAFETY: ring 0, interrupts still off, nobody else programs the 8259s;
    // their spurious vectors 0x27/0x2f are ignored without EOI (idt.rs).
    unsafe { apic::pic::disable_legacy_pic() };
    idt::register(WAKE_VECTOR, |_| {});
    idt::register(TIMER_VECTOR, crate::platform::time::on_tick);
    idt::register(CONFIG.error_vector, on_apic_error);
    enable_this_cpu()?;
    let freq = percpu::current().lapic.with(|lapic| {
        let lapic = lapic.as_mut().expect("enabled above");
        lapic.calibrate_timer(&mut delay, CALIBRATION_US)
    })?;
    TIMER_FREQ.call_once(|| freq);
    Ok(())
}

/// Brings up an AP's x2APIC (same configuration and timer rate as the BSP).
///
/// # Panics
/// If it fails: the BSP had an x2APIC, so an AP without one is a broken
/// machine.
pub fn init_ap() {
    if let Err(e) = enable_this_cpu() {
        panic!("cpu {}: {e}", percpu::current_index());
    }
}

/// The APIC timer's rate in Hz at the calibration divider (0 before
/// [`init_bsp`]).
pub fn timer_hz() -> u64 {
    TIMER_FREQ.get().map_or(0, |f| f.ticks_per_ms() * 1000)
}

/// Signals end-of-interrupt to this CPU's APIC (the dispatcher does it after
/// every registered handler).
pub fn eoi() {
    percpu::current().lapic.with(|lapic| {
        if let Some(lapic) = lapic {
            lapic.eoi();
        }
    });
}

/// Sends a fixed IPI with `vector` to CPU index `cpu`.
///
/// # Panics
/// If `cpu` has not enabled its APIC yet, or the running CPU has not.
pub fn send_ipi(cpu: usize, vector: Vector) {
    assert!(
        percpu::current().apic_id().is_some(),
        "send_ipi before this CPU's APIC is on"
    );
    let target = percpu::cpu(cpu)
        .apic_id()
        .unwrap_or_else(|| panic!("cpu {cpu} has no APIC yet"));
    IPI.send_fixed(target, vector);
}

/// Sends `vector` to every CPU but the running one.
pub fn broadcast_ipi(vector: Vector) {
    assert!(
        percpu::current().apic_id().is_some(),
        "broadcast before this CPU's APIC is on"
    );
    IPI.broadcast_fixed(vector);
}

/// Starts the AP with x2APIC id `apic_id` at the trampoline page `page`
/// (INIT, INIT de-assert, SIPI, SIPI).
///
/// # Safety
/// The AP runs nothing (INIT resets it), and the trampoline at `page` is in
/// place with everything it jumps to ready (smp.rs).
pub unsafe fn start_ap(apic_id: u32, page: StartupPage) -> Result<(), ApicError> {
    percpu::current().lapic.with(|lapic| {
        let lapic = lapic
            .as_mut()
            .expect("the BSP's APIC is on before SMP start");
        // SAFETY: forwarded from the caller.
        unsafe { lapic.start_ap(apic_id, page, &mut delay) }
    })
}

/// Starts this CPU's APIC timer: [`TIMER_VECTOR`] every `micros`.
pub fn timer_periodic_us(micros: u64) -> Result<(), ApicError> {
    percpu::current().lapic.with(|lapic| {
        lapic
            .as_mut()
            .ok_or(ApicError::TimerNotCalibrated)?
            .start_periodic(TIMER_VECTOR, micros)
    })
}

/// Arms this CPU's APIC timer once: [`TIMER_VECTOR`] in `micros`.
pub fn timer_one_shot_us(micros: u64) -> Result<(), ApicError> {
    percpu::current().lapic.with(|lapic| {
        lapic
            .as_mut()
            .ok_or(ApicError::TimerNotCalibrated)?
            .start_one_shot(TIMER_VECTOR, micros)
    })
}

/// Stops this CPU's APIC timer.
pub fn timer_stop() {
    percpu::current().lapic.with(|lapic| {
        if let Some(lapic) = lapic {
            lapic.stop_timer();
        }
    });
}

/// The handler of the APIC error vector: the error is logged, not fatal
/// (a lost IPI shows up in whatever waited for it).
fn on_apic_error(_frame: &mut InterruptFrame) {
    let esr = percpu::current()
        .lapic
        .with(|lapic| lapic.as_ref().map(|l| l.read_and_clear_esr()));
    log::error!(
        "local APIC error on cpu {}: {esr:?}",
        percpu::current_index()
    );
}
