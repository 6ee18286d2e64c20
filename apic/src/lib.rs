//! An x2APIC interrupt driver: what a kernel needs to interrupt a core.
//!
//! The event layer notifies a vcore by sending its CPU an IPI; this crate
//! owns the local APIC that sends and receives those IPIs. It knows nothing
//! of events.
//!
//! - [`LocalApic`]: the per-CPU handle (`!Send`, `!Sync`). Bring-up into
//!   x2APIC mode with LINT0/1 masked, EOI, APIC ID, error status, fixed /
//!   self / broadcast IPIs, NMI, the INIT-SIPI-SIPI start of application
//!   processors, and the timer (one-shot, periodic, TSC-deadline) with
//!   calibration against a caller-supplied [`Delay`].
//! - [`IpiSender`]: a `Copy + Send + Sync` sender the notify path can hold
//!   in a `static`; it writes the ICR of whichever CPU runs it.
//! - [`pic::disable_legacy_pic`]: remaps the 8259 pair to 0x20–0x2F and
//!   masks it, once, before interrupts are enabled.
//! - Typed register encodings ([`Icr`], [`Lvt`], [`Svr`], [`Esr`],
//!   [`ApicBase`], [`TimerDivide`]), unit-tested against the SDM layouts.
//!
//! x2APIC only: a CPU without it (CPUID.1:ECX bit 21) gets
//! [`ApicError::NoX2Apic`], whose `Display` text says so, instead of a
//! silent fallback to the memory-mapped xAPIC.
//!
//! # Hardware access and testing
//!
//! Every register access goes through [`MsrAccess`] (three methods: read,
//! write, store fence) and the 8259 through [`pic::PortIo`]. The real
//! implementations, [`CpuMsr`] and [`pic::CpuPorts`], exist only on x86_64;
//! everything else is plain Rust that builds anywhere. The host tests run
//! the driver against `mock::MockMsr`, which records every access in
//! order, can be scripted (ESR errors, timer counts, TSC values), and
//! panics where real hardware would raise #GP. Enable the `mock` feature
//! (std) to use it from other crates' tests.
//!
//! # Dependencies, and why not the `x2apic` crate
//!
//! `x86_64` supplies `Msr`, port I/O and `ApicBaseFlags`; `core::arch`
//! supplies CPUID; `bitflags` the ESR bits. The `x2apic` crate (0.5.1) is
//! deliberately *not* used. Its `LocalApic::enable()` unmasks LINT0/LINT1
//! and starts a periodic timer (initial count 10,000,000); it sets EXTD
//! without first setting EN (a #GP when firmware left the APIC disabled);
//! its xAPIC fallback uses the x2APIC-only SELF IPI register and the x2APIC
//! ICR destination layout; its `get_ipi_delivery_status` reads a bit that is
//! reserved in x2APIC mode; its registers are hard-wired to `x86_64::Msr`,
//! so nothing it does can be observed by a host test; and the pieces that
//! would be reusable (the register addresses and bit positions) are private
//! to it. What remained public, a few enums, did not justify its dependency
//! tree (`raw-cpuid`, `bitflags` 1, `bit`, `paste`).
//!
//! # Bringing up a machine
//!
//! ```text
//! // BSP, interrupts off, IDT installed (spurious 0xFF: no EOI; error 0xFE).
//! unsafe { apic::pic::disable_legacy_pic() };
//! let mut lapic = unsafe { LocalApic::enable_current_cpu(&ApicConfig::DEFAULT) }
//!     .unwrap_or_else(|e| panic!("{e}"));
//! let freq = lapic.calibrate_timer(&mut pit_delay, 10_000)?;
//! for ap in other_apic_ids {
//!     unsafe { lapic.start_ap(ap, StartupPage::from_addr(0x8000)?, &mut pit_delay)? };
//! }
//! // Each AP, first thing: enable_current_cpu, then set_timer_frequency(freq).
//! // Event layer: static IPI: IpiSender<CpuMsr> = unsafe { IpiSender::cpu() };
//! //              IPI.send_fixed(target_apic_id, NOTIFY_VECTOR);
//! ```

#![cfg_attr(not(any(test, feature = "mock")), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod base;
pub mod cpuid;
pub mod delay;
pub mod error;
pub mod esr;
pub mod icr;
pub mod ipi;
pub mod local;
pub mod lvt;
pub mod msr;
pub mod pic;
pub mod regs;
pub mod svr;
pub mod timer;
pub mod vector;

#[cfg(any(test, feature = "mock"))]
pub mod mock;

#[cfg(test)]
mod tests;

pub use base::{ApicBase, ApicBaseFlags};
pub use cpuid::CpuFeatures;
pub use delay::Delay;
pub use error::ApicError;
pub use esr::Esr;
pub use icr::{DeliveryMode, DestinationMode, Icr, Level, Shorthand, TriggerMode};
pub use ipi::IpiSender;
pub use local::{ApicConfig, INIT_DELAY_US, LocalApic, SIPI_DELAY_US};
pub use lvt::{Lvt, LvtDeliveryMode, Polarity, TimerDivide, TimerMode};
#[cfg(target_arch = "x86_64")]
pub use msr::CpuMsr;
pub use msr::MsrAccess;
pub use svr::Svr;
pub use timer::{CALIBRATION_DIVIDE, TimerFrequency, TscFrequency};
pub use vector::{StartupPage, Vector};
