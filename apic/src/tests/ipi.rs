use super::*;
use crate::IpiSender;
use crate::mock::{Access, write};

#[test]
fn send_fixed_fences_then_writes_the_icr_once() {
    let mock = MockMsr::new();
    let apic = enabled(&mock, X2APIC);
    apic.send_fixed(5, NOTIFY);
    assert_eq!(
        mock.log(),
        [Access::Fence, write(0x830, 0x0000_0005_0000_40F0)]
    );
}

#[test]
fn send_self_uses_the_self_ipi_register() {
    let mock = MockMsr::new();
    let apic = enabled(&mock, X2APIC);
    apic.send_self(NOTIFY);
    assert_eq!(mock.log(), [Access::Fence, write(0x83F, 0xF0)]);
}

#[test]
fn broadcast_uses_the_all_excluding_self_shorthand() {
    let mock = MockMsr::new();
    let apic = enabled(&mock, X2APIC);
    apic.broadcast_fixed(NOTIFY);
    assert_eq!(mock.log(), [Access::Fence, write(0x830, 0x000C_40F0)]);
}

#[test]
fn nmi_is_delivery_mode_100_with_vector_0() {
    let mock = MockMsr::new();
    let apic = enabled(&mock, X2APIC);
    // SAFETY: the mock touches no hardware.
    unsafe { apic.send_nmi(2) };
    assert_eq!(
        mock.log(),
        [Access::Fence, write(0x830, 0x0000_0002_0000_4400)]
    );
}

#[test]
fn ipi_sender_sends_like_the_handle() {
    let mock = MockMsr::in_x2apic_mode(1);
    // SAFETY: the mock touches no hardware and is in x2APIC mode.
    let sender = unsafe { IpiSender::new(mock.clone()) };
    sender.send_fixed(0xFFFF_FFFE, NOTIFY);
    sender.send_self(NOTIFY);
    sender.broadcast_fixed(NOTIFY);
    assert_eq!(
        mock.log(),
        [
            Access::Fence,
            write(0x830, 0xFFFF_FFFE_0000_40F0),
            Access::Fence,
            write(0x83F, 0xF0),
            Access::Fence,
            write(0x830, 0x000C_40F0),
        ]
    );
}

#[test]
fn ipi_sender_is_usable_from_other_threads() {
    let mock = MockMsr::in_x2apic_mode(0);
    // SAFETY: the mock touches no hardware and is in x2APIC mode.
    let sender = unsafe { IpiSender::new(mock.clone()) };
    std::thread::scope(|s| {
        for id in 0..4 {
            let sender = &sender;
            s.spawn(move || sender.send_fixed(id, NOTIFY));
        }
    });
    let mut dests: Vec<u64> = mock.writes_to(0x830).iter().map(|icr| icr >> 32).collect();
    dests.sort_unstable();
    assert_eq!(dests, [0, 1, 2, 3]);
}

#[test]
#[should_panic(expected = "#GP")]
fn ipi_sender_on_a_cpu_without_x2apic_mode_would_fault() {
    let mock = MockMsr::new(); // still xAPIC: the ICR MSR does not exist
    // SAFETY: deliberately breaks the contract, against the mock only.
    let sender = unsafe { IpiSender::new(mock) };
    sender.send_fixed(1, NOTIFY);
}
