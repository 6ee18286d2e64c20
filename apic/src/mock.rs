//! Host test doubles: a recording, scriptable MSR file that raises the
//! x2APIC's #GP conditions as panics, a recording port space and a delay
//! that logs into the same access log.
//!
//! Built for `cfg(test)` and with the `mock` feature (std only), so other
//! crates' tests can hold an `IpiSender<MockMsr>` and check what their
//! notify path sent.
//!
//! # Semantics
//!
//! - Every access is appended to one ordered log ([`Access`]), together
//!   with [`MockDelay`] waits and [`MsrAccess::wrmsr_fence`] calls, so a
//!   test can assert a whole sequence with one `assert_eq!`.
//! - A read returns the next value queued by [`MockMsr::script_reads`] for
//!   that MSR, else the last value written or [`MockMsr::set`], else 0.
//! - What real hardware would answer with #GP panics with a message that
//!   starts with `#GP`: an x2APIC register (0x800–0xBFF) touched while
//!   IA32_APIC_BASE is not EN|EXTD; an illegal APIC-base transition
//!   (disabled -> x2APIC, x2APIC -> xAPIC); a non-zero write to EOI or ESR;
//!   a write to a read-only register (ID, version, current count) or a read
//!   of a write-only one (EOI, SELF IPI); an ICR write with reserved bits;
//!   an LVT entry beyond the version register's "max LVT entry".
//!
//! The clones of a [`MockMsr`] share one state, so a test keeps a clone to
//! inspect while the driver owns another.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::vec::Vec;

use crate::base::ApicBase;
use crate::delay::Delay;
use crate::icr::Icr;
use crate::msr::MsrAccess;
use crate::pic::PortIo;
use crate::regs;

/// One logged event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// RDMSR of `msr` returned `value`.
    Read {
        /// The MSR.
        msr: u32,
        /// What the read returned.
        value: u64,
    },
    /// WRMSR of `value` to `msr`.
    Write {
        /// The MSR.
        msr: u32,
        /// The value written.
        value: u64,
    },
    /// [`MsrAccess::wrmsr_fence`].
    Fence,
    /// A [`MockDelay`] wait.
    Delay {
        /// The requested wait.
        micros: u32,
    },
}

/// Shorthand for [`Access::Read`].
pub const fn read(msr: u32, value: u64) -> Access {
    Access::Read { msr, value }
}

/// Shorthand for [`Access::Write`].
pub const fn write(msr: u32, value: u64) -> Access {
    Access::Write { msr, value }
}

/// Shorthand for [`Access::Delay`].
pub const fn delay(micros: u32) -> Access {
    Access::Delay { micros }
}

#[derive(Debug, Default)]
struct State {
    values: BTreeMap<u32, u64>,
    scripted: BTreeMap<u32, VecDeque<u64>>,
    log: Vec<Access>,
}

/// A recording, scriptable [`MsrAccess`].
#[derive(Debug, Clone, Default)]
pub struct MockMsr {
    state: Arc<Mutex<State>>,
}

impl MockMsr {
    /// Version register value of the default mock: version 0x14, max LVT
    /// entry 5 (timer, thermal, perf, LINT0, LINT1, error; no CMCI), which
    /// is what QEMU reports.
    pub const QEMU_VERSION: u64 = 0x0005_0014;

    /// A bootstrap processor as firmware leaves it: IA32_APIC_BASE
    /// 0xFEE00900 (xAPIC, enabled, BSP), APIC ID 0, [`Self::QEMU_VERSION`].
    pub fn new() -> Self {
        let m = Self::default();
        m.set(regs::ApicBase::MSR, 0xFEE0_0900);
        m.set(regs::Version::MSR, Self::QEMU_VERSION);
        m
    }

    /// A CPU already in x2APIC mode with ID `apic_id` (not the BSP), for
    /// tests that start after bring-up.
    pub fn in_x2apic_mode(apic_id: u32) -> Self {
        let m = Self::new();
        m.set(regs::ApicBase::MSR, 0xFEE0_0C00);
        m.set(regs::ApicId::MSR, u64::from(apic_id));
        m
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in one test (a simulated #GP) must not poison others'
        // view of a shared clone.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets `msr`'s current value without logging an access.
    pub fn set(&self, msr: u32, value: u64) {
        self.lock().values.insert(msr, value);
    }

    /// `msr`'s current value (last write or [`Self::set`], else 0).
    pub fn value(&self, msr: u32) -> u64 {
        self.lock().values.get(&msr).copied().unwrap_or(0)
    }

    /// Queues values that the next reads of `msr` return, in order, before
    /// falling back to its current value (e.g. ESR errors, a timer count).
    pub fn script_reads(&self, msr: u32, values: impl IntoIterator<Item = u64>) {
        self.lock().scripted.entry(msr).or_default().extend(values);
    }

    /// The access log so far.
    pub fn log(&self) -> Vec<Access> {
        self.lock().log.clone()
    }

    /// The access log so far, emptying it.
    pub fn take_log(&self) -> Vec<Access> {
        std::mem::take(&mut self.lock().log)
    }

    /// The values written to `msr`, in order.
    pub fn writes_to(&self, msr: u32) -> Vec<u64> {
        self.lock()
            .log
            .iter()
            .filter_map(|a| match *a {
                Access::Write { msr: m, value } if m == msr => Some(value),
                _ => None,
            })
            .collect()
    }

    /// A [`Delay`] that logs [`Access::Delay`] into this mock's log.
    pub fn delay(&self) -> MockDelay {
        MockDelay { mock: self.clone() }
    }

    fn check_access(state: &State, msr: u32) {
        if !regs::is_x2apic_register(msr) {
            return;
        }
        let base =
            ApicBase::from_bits(state.values.get(&regs::ApicBase::MSR).copied().unwrap_or(0));
        if !base.is_x2apic() {
            panic!(
                "#GP: x2APIC register {msr:#x} accessed while IA32_APIC_BASE is {:#x}",
                base.bits()
            );
        }
        let max_lvt = (state.values.get(&regs::Version::MSR).copied().unwrap_or(0) >> 16) as u8;
        let needed = match msr {
            regs::LvtPerf::MSR => 4,
            regs::LvtThermal::MSR => 5,
            regs::LvtCmci::MSR => 6,
            _ => 0,
        };
        if max_lvt < needed {
            panic!("#GP: LVT register {msr:#x} does not exist with max LVT entry {max_lvt}");
        }
    }
}

impl MsrAccess for MockMsr {
    unsafe fn read(&self, msr: u32) -> u64 {
        let mut state = self.lock();
        Self::check_access(&state, msr);
        if matches!(msr, regs::Eoi::MSR | regs::SelfIpi::MSR) {
            panic!("#GP: read of write-only x2APIC register {msr:#x}");
        }
        let scripted = state.scripted.get_mut(&msr).and_then(VecDeque::pop_front);
        let value = scripted.unwrap_or_else(|| state.values.get(&msr).copied().unwrap_or(0));
        state.log.push(Access::Read { msr, value });
        value
    }

    unsafe fn write(&self, msr: u32, value: u64) {
        let mut state = self.lock();
        Self::check_access(&state, msr);
        match msr {
            regs::ApicBase::MSR => {
                let old = ApicBase::from_bits(state.values.get(&msr).copied().unwrap_or(0));
                let new = ApicBase::from_bits(value);
                let extd_only = new.bits() & (1 << 10) != 0 && !new.is_enabled();
                if extd_only
                    || (!old.is_enabled() && new.is_x2apic())
                    || (old.is_x2apic() && new.is_enabled() && !new.is_x2apic())
                {
                    panic!(
                        "#GP: illegal IA32_APIC_BASE transition {:#x} -> {value:#x}",
                        old.bits()
                    );
                }
            }
            regs::Eoi::MSR | regs::Esr::MSR if value != 0 => {
                panic!("#GP: non-zero write {value:#x} to x2APIC register {msr:#x}");
            }
            regs::ApicId::MSR | regs::Version::MSR | regs::TimerCurrentCount::MSR => {
                panic!("#GP: write to read-only x2APIC register {msr:#x}");
            }
            regs::Icr::MSR if value & Icr::RESERVED != 0 => {
                panic!("#GP: ICR write {value:#x} sets reserved bits");
            }
            _ => {}
        }
        state.values.insert(msr, value);
        state.log.push(Access::Write { msr, value });
    }

    fn wrmsr_fence(&self) {
        self.lock().log.push(Access::Fence);
    }
}

/// A [`Delay`] that logs into a [`MockMsr`]'s access log and returns at
/// once.
#[derive(Debug, Clone)]
pub struct MockDelay {
    mock: MockMsr,
}

impl Delay for MockDelay {
    fn delay_us(&mut self, micros: u32) {
        self.mock.lock().log.push(Access::Delay { micros });
    }
}

/// A [`PortIo`] that records every `outb` in order.
#[derive(Debug, Clone, Default)]
pub struct MockPorts {
    /// `(port, value)` of every write, in order.
    pub writes: Vec<(u16, u8)>,
}

impl PortIo for MockPorts {
    unsafe fn outb(&mut self, port: u16, value: u8) {
        self.writes.push((port, value));
    }
}
