//! The event layer's notification path: a `Send + Sync` IPI sender.
//!
//! In x2APIC mode sending an IPI is one WRMSR to the ICR of *the CPU that
//! executes it*, with the destination in the value. So a sender needs no
//! per-CPU state at all: the same [`IpiSender`] value works on every CPU,
//! can live in a `static`, be copied into the event layer, and be used from
//! a thread that migrates between two sends (each send is one instruction,
//! so it cannot be split across CPUs either). What it does need is x2APIC
//! mode on whichever CPU runs it, hence the `unsafe` constructor.

use crate::icr::Icr;
use crate::local::{send_icr, send_self_ipi};
use crate::msr::MsrAccess;
use crate::vector::Vector;

/// Sends fixed IPIs from any CPU.
///
/// `Copy + Send + Sync` with the real [`CpuMsr`](crate::CpuMsr) (a
/// zero-sized type). Each send issues the store fence of
/// [`MsrAccess::wrmsr_fence`] first, so everything the caller wrote before
/// the call (an event message, a mailbox index) is globally visible before
/// the target CPU can take the interrupt. Sends do not read the ESR: that
/// would triple the cost of a notification, and the one send error a modern
/// x2APIC reports, an illegal vector, cannot be expressed with [`Vector`].
#[derive(Debug, Clone, Copy)]
pub struct IpiSender<M: MsrAccess> {
    msr: M,
}

#[cfg(target_arch = "x86_64")]
static_assertions::assert_impl_all!(IpiSender<crate::CpuMsr>: Copy, Send, Sync);

impl<M: MsrAccess> IpiSender<M> {
    /// A sender writing through `msr`.
    ///
    /// # Safety
    ///
    /// On every CPU where any copy of this sender is used, x2APIC mode must
    /// already be enabled (by [`LocalApic::enable`](crate::LocalApic::enable)),
    /// `msr` must reach that CPU's MSRs in ring 0, and every vector sent
    /// must have a handler on its destinations.
    pub const unsafe fn new(msr: M) -> Self {
        Self { msr }
    }

    /// Sends `vector` to the CPU with x2APIC ID `apic_id`.
    #[inline]
    pub fn send_fixed(&self, apic_id: u32, vector: Vector) {
        // SAFETY: `new`'s contract: x2APIC is on wherever this runs and the
        // vector has a handler; a fixed IPI has no other effect.
        unsafe { send_icr(&self.msr, Icr::fixed(apic_id, vector)) }
    }

    /// Sends `vector` to the CPU running this call (SELF IPI register).
    #[inline]
    pub fn send_self(&self, vector: Vector) {
        // SAFETY: as `send_fixed`.
        unsafe { send_self_ipi(&self.msr, vector) }
    }

    /// Sends `vector` to every CPU but the one running this call.
    #[inline]
    pub fn broadcast_fixed(&self, vector: Vector) {
        // SAFETY: as `send_fixed`.
        unsafe { send_icr(&self.msr, Icr::fixed_all_excluding_self(vector)) }
    }
}

#[cfg(target_arch = "x86_64")]
impl IpiSender<crate::CpuMsr> {
    /// The sender for real hardware; `const`, so it can initialise a
    /// `static`.
    ///
    /// # Safety
    ///
    /// As [`IpiSender::new`]: only used on CPUs whose x2APIC is enabled, in
    /// ring 0, with handlers for the vectors sent.
    pub const unsafe fn cpu() -> Self {
        Self { msr: crate::CpuMsr }
    }
}
