use super::*;
use crate::mock::{Access, delay, read, write};
use crate::{ApicError, Esr, Icr, StartupPage, regs};

const TRAMPOLINE: u64 = 0x8000;

fn start(mock: &MockMsr, apic: &mut LocalApic<MockMsr>, id: u32) -> Result<(), ApicError> {
    let page = StartupPage::from_addr(TRAMPOLINE).unwrap();
    let mut d = mock.delay();
    // SAFETY: the mock touches no hardware.
    unsafe { apic.start_ap(id, page, &mut d) }
}

fn check(esr: u64) -> [Access; 2] {
    [write(0x828, 0), read(0x828, esr)]
}

#[test]
fn init_deassert_sipi_sipi_in_order_with_the_sdm_delays() {
    let mock = MockMsr::new();
    let mut apic = enabled(&mock, X2APIC);
    start(&mock, &mut apic, 3).unwrap();
    let init = 0x0000_0003_0000_C500; // INIT, level assert, level trigger
    let deassert = 0x0000_0003_0000_8500; // INIT, level de-assert, level trigger
    let sipi = 0x0000_0003_0000_4608; // STARTUP, page 0x08 (0x8000)
    let expected: Vec<Access> = [
        &check(0)[..], // stale errors discarded
        &[Access::Fence, write(0x830, init), delay(10_000)],
        &check(0),
        &[Access::Fence, write(0x830, deassert)],
        &check(0),
        &[Access::Fence, write(0x830, sipi), delay(200)],
        &check(0),
        &[Access::Fence, write(0x830, sipi), delay(200)],
        &check(0),
    ]
    .concat();
    assert_eq!(mock.log(), expected);
}

#[test]
fn a_send_error_after_the_first_sipi_stops_the_sequence() {
    let mock = MockMsr::new();
    let mut apic = enabled(&mock, X2APIC);
    // Reads of the ESR: stale, after INIT, after de-assert, after SIPI 1.
    mock.script_reads(regs::Esr::MSR, [0, 0, 0, 0x20]);
    let err = start(&mock, &mut apic, 1).unwrap_err();
    let sipi = Icr::startup(1, StartupPage::from_addr(TRAMPOLINE).unwrap());
    assert_eq!(
        err,
        ApicError::SendFailed {
            icr: sipi,
            esr: Esr::SEND_ILLEGAL_VECTOR
        }
    );
    assert_eq!(
        mock.writes_to(0x830).len(),
        3,
        "no second SIPI after the error"
    );
    assert_eq!(mock.log().last(), Some(&read(0x828, 0x20)));
}

#[test]
fn a_send_error_after_init_reports_the_init_ipi() {
    let mock = MockMsr::new();
    let mut apic = enabled(&mock, X2APIC);
    mock.script_reads(regs::Esr::MSR, [0, 0x04]);
    let err = start(&mock, &mut apic, 7).unwrap_err();
    assert_eq!(
        err,
        ApicError::SendFailed {
            icr: Icr::init_assert(7),
            esr: Esr::SEND_ACCEPT
        }
    );
    assert_eq!(mock.writes_to(0x830), [0x0000_0007_0000_C500]);
}

#[test]
fn stale_and_receive_side_errors_do_not_fail_the_start() {
    let mock = MockMsr::new();
    let mut apic = enabled(&mock, X2APIC);
    // A stale send error from before the sequence, then receive-side bits.
    mock.script_reads(regs::Esr::MSR, [0x20, 0x40, 0x08, 0x02, 0x40]);
    assert_eq!(start(&mock, &mut apic, 2), Ok(()));
    assert_eq!(mock.writes_to(0x830).len(), 4);
}
