//! Driver sequences checked through the recording mock.
//!
//! Each test states the exact MSR access log the SDM calls for; the mock
//! additionally panics on anything real hardware would answer with #GP, so
//! a wrong order (an x2APIC register before EXTD, an absent LVT entry)
//! fails even where the log is not compared.

mod bringup;
mod errors;
mod ipi;
mod start_ap;
mod timer;

use crate::mock::MockMsr;
use crate::{ApicConfig, CpuFeatures, LocalApic, Vector};

const X2APIC: CpuFeatures = CpuFeatures {
    x2apic: true,
    tsc_deadline: false,
};
const X2APIC_TSC: CpuFeatures = CpuFeatures {
    x2apic: true,
    tsc_deadline: true,
};
const NOTIFY: Vector = Vector::new(0xF0).unwrap();
const MASKED: u64 = 0x1_0000;

/// A handle brought up on `mock` with the default vectors; the bring-up's
/// accesses are removed from the log.
fn enabled(mock: &MockMsr, features: CpuFeatures) -> LocalApic<MockMsr> {
    // SAFETY: the mock touches no hardware.
    let apic = unsafe { LocalApic::enable(mock.clone(), features, &ApicConfig::DEFAULT) }
        .expect("bring-up succeeds");
    mock.take_log();
    apic
}
