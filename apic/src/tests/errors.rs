use super::*;
use crate::mock::MockMsr;
use crate::{ApicError, Esr, Icr, MsrAccess, regs};

#[test]
fn no_x2apic_message_names_the_problem() {
    let msg = ApicError::NoX2Apic.to_string();
    assert!(msg.contains("no x2APIC"), "{msg}");
    assert!(msg.contains("CPUID.1:ECX bit 21"), "{msg}");
    assert!(msg.contains("will not fall back to xAPIC"), "{msg}");
}

#[test]
fn every_error_has_a_message() {
    let all = [
        ApicError::NoX2Apic,
        ApicError::InvalidVector { vector: 3 },
        ApicError::InvalidStartupAddress { addr: 0x8001 },
        ApicError::SendFailed {
            icr: Icr::fixed(1, NOTIFY),
            esr: Esr::SEND_ILLEGAL_VECTOR,
        },
        ApicError::TimerNotCalibrated,
        ApicError::NoTscDeadline,
        ApicError::TscNotCalibrated,
        ApicError::ZeroCalibrationWindow,
        ApicError::TimerNotCounting,
        ApicError::CalibrationOverflow { window_us: 10 },
        ApicError::TimerPeriodOutOfRange { micros: 0 },
    ];
    for e in all {
        assert!(e.to_string().len() > 30, "{e:?}");
    }
    let send = ApicError::SendFailed {
        icr: Icr::fixed(1, NOTIFY),
        esr: Esr::SEND_ILLEGAL_VECTOR,
    }
    .to_string();
    assert!(
        send.contains("0x00000001000040f0") && send.contains("0x20"),
        "{send}"
    );
    assert!(
        ApicError::InvalidVector { vector: 3 }
            .to_string()
            .contains("0x03")
    );
}

// The mock's #GP checks are what make the sequence tests meaningful; make
// sure they fire.

#[test]
#[should_panic(expected = "#GP")]
fn mock_faults_on_x2apic_register_in_xapic_mode() {
    // SAFETY: the mock touches no hardware.
    unsafe { MockMsr::new().write(regs::Eoi::MSR, 0) };
}

#[test]
#[should_panic(expected = "#GP")]
fn mock_faults_on_nonzero_eoi() {
    // SAFETY: the mock touches no hardware.
    unsafe { MockMsr::in_x2apic_mode(0).write(regs::Eoi::MSR, 1) };
}

#[test]
#[should_panic(expected = "#GP")]
fn mock_faults_on_disabled_to_x2apic() {
    let mock = MockMsr::new();
    mock.set(regs::ApicBase::MSR, 0xFEE0_0000);
    // SAFETY: the mock touches no hardware.
    unsafe { mock.write(regs::ApicBase::MSR, 0xFEE0_0C00) };
}

#[test]
#[should_panic(expected = "#GP")]
fn mock_faults_on_x2apic_to_xapic() {
    // SAFETY: the mock touches no hardware.
    unsafe { MockMsr::in_x2apic_mode(0).write(regs::ApicBase::MSR, 0xFEE0_0800) };
}

#[test]
#[should_panic(expected = "#GP")]
fn mock_faults_on_icr_reserved_bits() {
    // SAFETY: the mock touches no hardware.
    unsafe { MockMsr::in_x2apic_mode(0).write(regs::Icr::MSR, 1 << 13) };
}

#[test]
#[should_panic(expected = "#GP")]
fn mock_faults_on_absent_cmci_entry() {
    // QEMU's version register: max LVT 5, no CMCI.
    // SAFETY: the mock touches no hardware.
    unsafe { MockMsr::in_x2apic_mode(0).write(regs::LvtCmci::MSR, MASKED) };
}
