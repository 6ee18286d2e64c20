use super::*;
use crate::mock::{Access, delay, read, write};
use crate::{ApicError, TimerDivide, TimerFrequency, TscFrequency, regs};

const TICK: Vector = Vector::new(0x20).unwrap();

/// 62 500 ticks per ms at divide 16: QEMU's 1 GHz APIC clock.
fn calibrated(mock: &MockMsr, features: CpuFeatures) -> LocalApic<MockMsr> {
    let mut apic = enabled(mock, features);
    apic.set_timer_frequency(TimerFrequency::new(62_500, TimerDivide::By16));
    apic
}

#[test]
fn calibration_counts_down_over_the_callers_window() {
    let mock = MockMsr::new();
    let mut apic = enabled(&mock, X2APIC);
    let left = u64::from(u32::MAX) - 625_000;
    mock.script_reads(regs::TimerCurrentCount::MSR, [left]);
    let freq = apic.calibrate_timer(&mut mock.delay(), 10_000).unwrap();
    assert_eq!(freq, TimerFrequency::new(62_500, TimerDivide::By16));
    assert_eq!(apic.timer_frequency(), Some(freq));
    assert_eq!(
        mock.log(),
        [
            write(0x83E, 0b0011),      // divide by 16
            write(0x832, MASKED),      // LVT timer masked, one-shot
            write(0x838, 0xFFFF_FFFF), // count from the top
            delay(10_000),
            read(0x839, left),
            write(0x838, 0), // stopped again
        ]
    );
}

#[test]
fn calibration_errors() {
    let mock = MockMsr::new();
    let mut apic = enabled(&mock, X2APIC);
    assert_eq!(
        apic.calibrate_timer(&mut mock.delay(), 0),
        Err(ApicError::ZeroCalibrationWindow)
    );
    assert_eq!(mock.take_log(), [], "a zero window touches nothing");

    mock.script_reads(regs::TimerCurrentCount::MSR, [0]);
    assert_eq!(
        apic.calibrate_timer(&mut mock.delay(), 10_000),
        Err(ApicError::CalibrationOverflow { window_us: 10_000 })
    );
    mock.script_reads(regs::TimerCurrentCount::MSR, [u64::from(u32::MAX)]);
    assert_eq!(
        apic.calibrate_timer(&mut mock.delay(), 10_000),
        Err(ApicError::TimerNotCounting)
    );
    assert_eq!(apic.timer_frequency(), None);
    // Both failures still stopped the timer.
    assert_eq!(mock.value(0x838), 0);
}

#[test]
fn periodic_tick_programs_divide_lvt_then_count() {
    let mock = MockMsr::new();
    let mut apic = calibrated(&mock, X2APIC);
    apic.start_periodic(TICK, 10_000).unwrap();
    assert_eq!(
        mock.log(),
        [
            write(0x83E, 0b0011),
            write(0x832, 0x2_0020), // periodic (bits 18:17 = 01), vector 0x20, unmasked
            write(0x838, 625_000),  // 10 ms at 62 500 ticks/ms
        ]
    );
}

#[test]
fn one_shot_uses_mode_00() {
    let mock = MockMsr::new();
    let mut apic = calibrated(&mock, X2APIC);
    apic.start_one_shot(TICK, 1).unwrap();
    assert_eq!(
        mock.log(),
        [write(0x83E, 0b0011), write(0x832, 0x20), write(0x838, 62)]
    );
}

#[test]
fn timer_needs_calibration_and_a_representable_period() {
    let mock = MockMsr::new();
    let mut apic = enabled(&mock, X2APIC);
    assert_eq!(
        apic.start_periodic(TICK, 1000),
        Err(ApicError::TimerNotCalibrated)
    );
    apic.set_timer_frequency(TimerFrequency::new(62_500, TimerDivide::By16));
    assert_eq!(
        apic.start_periodic(TICK, 1_000_000_000),
        Err(ApicError::TimerPeriodOutOfRange {
            micros: 1_000_000_000
        })
    );
    let slow = TimerFrequency::new(10, TimerDivide::By128);
    apic.set_timer_frequency(slow);
    assert_eq!(
        apic.start_one_shot(TICK, 50),
        Err(ApicError::TimerPeriodOutOfRange { micros: 50 })
    );
    assert_eq!(mock.log(), [], "nothing written on error");
}

#[test]
fn stop_masks_and_zeroes_and_disarms_a_deadline_only_if_present() {
    let mock = MockMsr::new();
    let mut apic = calibrated(&mock, X2APIC);
    apic.stop_timer();
    assert_eq!(mock.take_log(), [write(0x832, MASKED), write(0x838, 0)]);

    let mut apic = calibrated(&mock, X2APIC_TSC);
    apic.stop_timer();
    assert_eq!(
        mock.log(),
        [write(0x6E0, 0), write(0x832, MASKED), write(0x838, 0)]
    );
}

#[test]
fn tsc_deadline_mode_fences_after_the_lvt_write() {
    let mock = MockMsr::new();
    let mut apic = enabled(&mock, X2APIC_TSC);
    apic.enable_tsc_deadline(TICK).unwrap();
    apic.set_tsc_deadline(123_456).unwrap();
    assert_eq!(
        mock.log(),
        [write(0x832, 0x4_0020), Access::Fence, write(0x6E0, 123_456)] // mode 10
    );
}

#[test]
fn tsc_deadline_needs_the_cpu_feature() {
    let mock = MockMsr::new();
    let mut apic = enabled(&mock, X2APIC);
    assert_eq!(
        apic.enable_tsc_deadline(TICK),
        Err(ApicError::NoTscDeadline)
    );
    assert_eq!(apic.set_tsc_deadline(1), Err(ApicError::NoTscDeadline));
    assert_eq!(apic.arm_tsc_deadline_in(1), Err(ApicError::NoTscDeadline));
    assert_eq!(mock.log(), []);
}

#[test]
fn tsc_calibration_and_relative_deadline() {
    let mock = MockMsr::new();
    let mut apic = enabled(&mock, X2APIC_TSC);
    assert_eq!(
        apic.arm_tsc_deadline_in(100),
        Err(ApicError::TscNotCalibrated)
    );
    // 3 GHz TSC: 30 000 000 ticks over 10 ms.
    mock.script_reads(regs::Tsc::MSR, [1_000, 30_001_000, 5_000_000]);
    let freq = apic.calibrate_tsc(&mut mock.delay(), 10_000).unwrap();
    assert_eq!(freq, TscFrequency::new(3_000_000));
    let deadline = apic.arm_tsc_deadline_in(100).unwrap();
    assert_eq!(deadline, 5_000_000 + 300_000);
    assert_eq!(
        mock.log(),
        [
            read(0x10, 1_000),
            delay(10_000),
            read(0x10, 30_001_000),
            read(0x10, 5_000_000),
            write(0x6E0, 5_300_000),
        ]
    );
}
