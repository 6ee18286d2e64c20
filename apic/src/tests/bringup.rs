use super::*;
use crate::mock::{Access, read, write};
use crate::{ApicError, regs};

/// The expected bring-up log after the IA32_APIC_BASE writes, for a
/// version register with max LVT entry `max_lvt`.
fn after_base(max_lvt: u64) -> Vec<Access> {
    let mut log = vec![
        read(0x803, max_lvt << 16 | 0x14),
        write(0x80F, 0x1FF),  // SVR: vector 0xFF + software enable (bit 8)
        write(0x808, 0),      // TPR 0
        write(0x832, MASKED), // LVT timer masked, one-shot
        write(0x838, 0),      // timer initial count 0
        write(0x835, MASKED), // LINT0 masked
        write(0x836, MASKED), // LINT1 masked
    ];
    if max_lvt >= 4 {
        log.push(write(0x834, MASKED)); // perf counters
    }
    if max_lvt >= 5 {
        log.push(write(0x833, MASKED)); // thermal
    }
    if max_lvt >= 6 {
        log.push(write(0x82F, MASKED)); // CMCI
    }
    log.extend([
        write(0x828, 0),    // ESR: latch...
        read(0x828, 0),     // ...and discard stale errors
        write(0x837, 0xFE), // LVT error, unmasked, vector 0xFE
    ]);
    log
}

fn enable(mock: &MockMsr) -> Result<LocalApic<MockMsr>, ApicError> {
    // SAFETY: the mock touches no hardware.
    unsafe { LocalApic::enable(mock.clone(), X2APIC, &ApicConfig::DEFAULT) }
}

#[test]
fn bringup_from_xapic_sets_extd_then_programs_in_sdm_order() {
    let mock = MockMsr::new(); // 0xFEE00900: xAPIC, BSP
    let apic = enable(&mock).unwrap();
    let mut expected = vec![read(0x1B, 0xFEE0_0900), write(0x1B, 0xFEE0_0D00)];
    expected.extend(after_base(5));
    assert_eq!(mock.log(), expected);
    assert!(apic.is_bsp());
    assert_eq!(apic.max_lvt_entry(), 5);
}

#[test]
fn bringup_from_disabled_goes_through_xapic_first() {
    let mock = MockMsr::new();
    mock.set(regs::ApicBase::MSR, 0xFEE0_0000); // AP, APIC disabled
    let apic = enable(&mock).unwrap();
    let mut expected = vec![
        read(0x1B, 0xFEE0_0000),
        write(0x1B, 0xFEE0_0800), // EN: xAPIC
        write(0x1B, 0xFEE0_0C00), // EN | EXTD: x2APIC
    ];
    expected.extend(after_base(5));
    assert_eq!(mock.log(), expected);
    assert!(!apic.is_bsp());
}

#[test]
fn bringup_in_x2apic_mode_already_leaves_the_base_alone() {
    let mock = MockMsr::in_x2apic_mode(3);
    enable(&mock).unwrap();
    let mut expected = vec![read(0x1B, 0xFEE0_0C00)];
    expected.extend(after_base(5));
    assert_eq!(mock.log(), expected);
}

#[test]
fn bringup_masks_only_the_lvt_entries_the_version_register_lists() {
    for max_lvt in [3, 4, 5, 6] {
        let mock = MockMsr::in_x2apic_mode(0);
        mock.set(regs::Version::MSR, max_lvt << 16 | 0x14);
        enable(&mock).unwrap(); // the mock panics on an absent LVT entry
        let mut expected = vec![read(0x1B, 0xFEE0_0C00)];
        expected.extend(after_base(max_lvt));
        assert_eq!(mock.log(), expected, "max LVT {max_lvt}");
    }
}

#[test]
fn bringup_leaves_lint_timer_and_perf_masked_and_error_unmasked() {
    let mock = MockMsr::new();
    // Firmware's virtual-wire setup: LINT0 ExtINT, LINT1 NMI, both unmasked;
    // a periodic timer like the one `x2apic`'s `enable()` starts.
    mock.set(regs::LvtLint0::MSR, 0x700);
    mock.set(regs::LvtLint1::MSR, 0x400);
    mock.set(regs::LvtTimer::MSR, 0x2_0020);
    mock.set(regs::TimerInitialCount::MSR, 10_000_000);
    enable(&mock).unwrap();
    for reg in [0x835, 0x836, 0x832, 0x834, 0x833] {
        assert_ne!(mock.value(reg) & MASKED, 0, "{reg:#x} masked");
    }
    assert_eq!(mock.value(0x838), 0, "timer stopped");
    assert_eq!(mock.value(0x837), 0xFE, "error LVT unmasked on 0xFE");
    assert_eq!(mock.value(0x80F) & 0x100, 0x100, "software enabled");
    assert_eq!(mock.value(0x808), 0, "TPR 0");
}

#[test]
fn bringup_uses_the_configured_vectors() {
    let mock = MockMsr::new();
    let config = ApicConfig {
        spurious_vector: Vector::new(0xEF).unwrap(),
        error_vector: Vector::new(0xE0).unwrap(),
    };
    // SAFETY: the mock touches no hardware.
    unsafe { LocalApic::enable(mock.clone(), X2APIC, &config) }.unwrap();
    assert_eq!(mock.writes_to(0x80F), [0x1EF]);
    assert_eq!(mock.writes_to(0x837), [0xE0]);
}

#[test]
fn bringup_discards_stale_esr_errors() {
    let mock = MockMsr::new();
    mock.script_reads(regs::Esr::MSR, [0x40]);
    assert!(enable(&mock).is_ok());
}

#[test]
fn no_x2apic_is_an_error_before_any_access() {
    let mock = MockMsr::new();
    let features = CpuFeatures {
        x2apic: false,
        tsc_deadline: true,
    };
    // SAFETY: the mock touches no hardware.
    let err =
        unsafe { LocalApic::enable(mock.clone(), features, &ApicConfig::DEFAULT) }.unwrap_err();
    assert_eq!(err, ApicError::NoX2Apic);
    assert_eq!(mock.log(), []);
}

#[test]
fn eoi_writes_zero_to_0x80b() {
    let mock = MockMsr::new();
    let apic = enabled(&mock, X2APIC);
    apic.eoi();
    assert_eq!(mock.log(), [write(0x80B, 0)]);
}

#[test]
fn id_reads_the_full_32_bit_x2apic_id() {
    let mock = MockMsr::in_x2apic_mode(0x1_0002);
    let apic = enabled(&mock, X2APIC);
    assert_eq!(apic.id(), 0x1_0002);
    assert_eq!(mock.log(), [read(0x802, 0x1_0002)]);
}

#[test]
fn esr_is_written_with_zero_then_read() {
    let mock = MockMsr::new();
    let apic = enabled(&mock, X2APIC);
    mock.script_reads(regs::Esr::MSR, [0x60]);
    assert_eq!(
        apic.read_and_clear_esr(),
        crate::Esr::SEND_ILLEGAL_VECTOR | crate::Esr::RECEIVED_ILLEGAL_VECTOR
    );
    assert_eq!(mock.log(), [write(0x828, 0), read(0x828, 0x60)]);
}
