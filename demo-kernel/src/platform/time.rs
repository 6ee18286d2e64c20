//! Time: the TSC calibrated against the PIT, busy-wait delays, and the local
//! APIC timer as a periodic tick.
//!
//! At boot the BSP counts TSC cycles across a 10 ms one-shot of PIT channel
//! 2 (the PC speaker channel, whose output bit is readable at port 0x61, so
//! no PIT interrupt is needed). [`delay_us`] and [`now_ns`] then run on the
//! TSC, on any CPU. (Under QEMU TCG the TSC follows host time; under KVM it
//! is invariant.)
//!
//! The tick: [`start_tick`] programs this CPU's local APIC timer periodic at
//! a given rate on [`crate::platform::lapic::TIMER_VECTOR`]; each interrupt bumps the
//! CPU's `timer_ticks` and calls the hook set with [`set_tick_hook`] (later:
//! the scenario that preempts vcores).

use core::sync::atomic::{AtomicU64, Ordering};

use spin::RwLock;
use x86_64::instructions::interrupts;
use x86_64::instructions::port::Port;

use crate::platform::idt::InterruptFrame;

/// Input clock of the 8254 PIT, in Hz.
const PIT_HZ: u64 = 1_193_182;
/// Length of the calibration window.
const CALIBRATION_MS: u64 = 10;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads a counter (CR4.TSD is clear, and we are CPL 0).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Measures the TSC frequency with PIT channel 2. BSP only, at boot, with
/// interrupts off.
pub fn calibrate_tsc() -> u64 {
    let count = PIT_HZ * CALIBRATION_MS / 1000;
    let mut gate = Port::<u8>::new(0x61);
    let mut command = Port::<u8>::new(0x43);
    let mut channel2 = Port::<u8>::new(0x42);
    // SAFETY: ports 0x42/0x43/0x61 are the PIT and its gate; channel 2 only
    // drives the (disconnected) speaker, which we keep off.
    let cycles = unsafe {
        // Gate low (stopped), speaker off.
        let g = gate.read() & !0x03;
        gate.write(g);
        // Channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count).
        command.write(0b1011_0000);
        channel2.write((count & 0xff) as u8);
        channel2.write((count >> 8) as u8);
        // Raising the gate starts the count; OUT2 (bit 5) rises at zero.
        gate.write(g | 0x01);
        let start = rdtsc();
        let mut spins = 0u64;
        while gate.read() & 0x20 == 0 {
            spins += 1;
            assert!(spins < 1 << 32, "PIT channel 2 never counted down: no PIT?");
        }
        let end = rdtsc();
        gate.write(g);
        end - start
    };
    let hz = cycles * 1000 / CALIBRATION_MS;
    TSC_HZ.store(hz, Ordering::Relaxed);
    hz
}

/// TSC cycles per second (0 before [`calibrate_tsc`]).
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Nanoseconds since the TSC started (a monotonic clock, per CPU).
pub fn now_ns() -> u64 {
    (u128::from(rdtsc()) * 1_000_000_000 / u128::from(tsc_hz().max(1))) as u64
}

/// Busy-waits at least `us` microseconds.
pub fn delay_us(us: u64) {
    let cycles = tsc_hz() / 1_000_000 * us;
    let start = rdtsc();
    while rdtsc().wrapping_sub(start) < cycles {
        core::hint::spin_loop();
    }
}

/// What the tick calls, in interrupt context, after counting the tick.
/// One-shot timers ([`crate::platform::lapic::timer_one_shot_us`]) arrive here too.
pub type TickHook = fn(cpu: usize, frame: &mut InterruptFrame);

static TICK_HOOK: RwLock<Option<TickHook>> = RwLock::new(None);

/// Sets (or with `None` clears) the function every tick on every CPU calls.
pub fn set_tick_hook(hook: Option<TickHook>) {
    // Interrupts off: a tick on this CPU must not find the lock write-held.
    interrupts::without_interrupts(|| *TICK_HOOK.write() = hook);
}

/// The handler of [`crate::platform::lapic::TIMER_VECTOR`].
pub(crate) fn on_tick(frame: &mut InterruptFrame) {
    let cpu = crate::platform::percpu::current();
    cpu.timer_ticks.fetch_add(1, Ordering::Relaxed);
    let hook = *TICK_HOOK.read();
    if let Some(hook) = hook {
        hook(cpu.index(), frame);
    }
}

/// Starts this CPU's periodic tick at `hz` interrupts per second.
///
/// # Panics
/// If `hz` is 0 or the period does not fit the APIC timer.
pub fn start_tick(hz: u32) {
    assert!(hz > 0, "start_tick: 0 Hz");
    if let Err(e) = crate::platform::lapic::timer_periodic_us(1_000_000 / u64::from(hz)) {
        panic!("start_tick({hz} Hz): {e}");
    }
}

/// Stops this CPU's tick.
pub fn stop_tick() {
    crate::platform::lapic::timer_stop();
}
