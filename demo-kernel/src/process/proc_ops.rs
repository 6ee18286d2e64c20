//! The host traits of event delivery, implemented for [`Process`]: this is
//! all a kernel writes to adopt `event-core`.
//!
//! | method | here |
//! |---|---|
//! | `vcpd_abi::UserMemory::translate` (`unsafe` trait) | a walk of the process's page tables ([`AddressSpace::translate`](crate::process::address_space::AddressSpace::translate)): present, user, writable at every level, no straddling into an unmapped page |
//! | `ProcOps::events` | the process's `ProcEvents`: event-core's `VcoreSet` under this kernel's [`IrqSpinLock`](crate::process::IrqSpinLock), counters, UCQ locks |
//! | `ProcOps::procdata` | its procdata, checked once |
//! | `ProcOps::alloc_user_page` | a zeroed page of the process's space, mapped into it |
//! | `ProcOps::ipi` | a fixed x2APIC IPI to that CPU |
//! | `ProcOps::make_runnable` | grant it free cores |
//! | `ProcOps::with_address_space` | nothing to switch, normally (below) |
//! | `ProcOps::in_irq_context` | the CPU's interrupt depth |
//!
//! **Address spaces.** `with_address_space` does not load the process's
//! page tables for a send: the check already walks the process's tables
//! explicitly (it needs no CR3), and the pointer it returns is the page's
//! identity address, which the kernel's own tables map for every process
//! and the process's tables map for it. So a send needs either set of
//! tables loaded, and every CPU has one of the two: CPU 0 always runs on
//! the kernel's, an AP in a system call of the process on the process's.
//! Only if a CPU ran on a *third* process's tables (which no path here
//! does) would the pointer be unmapped; then `with_address_space` switches
//! to the kernel's tables for the call. No TLB flush for a send.

use core::ptr::NonNull;

use event_core::{PcoreId, ProcDataRef, ProcEvents, ProcOps};
use vcpd_abi::UserMemory;

use crate::platform::percpu;
use crate::process::address_space;
use crate::process::sched;
use crate::process::{Process, Vcores};

// SAFETY: `translate` returns a pointer only for ranges whose every page is
// mapped present, user-accessible and writable in the process's own page
// tables, each page at its own address (address_space.rs). Such a page is a
// page of the process's run of the user region: RAM reserved for this
// process for the whole run, holding no kernel data, never unmapped while
// the process lives (a freed page stays mapped and reserved), so the bytes
// stay valid for reads and writes for as long as the process exists, and
// the process may write anything there at any time. The pointer is the
// address itself, valid in the kernel's tables and in the process's
// (`with_address_space` makes sure one of them is loaded), so alignment is
// preserved; ranges that wrap or are not canonical are refused.
unsafe impl UserMemory for Process {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        self.space().translate(addr, len)
    }
}

impl ProcOps for Process {
    type Vcores = Vcores;

    fn events(&self) -> &ProcEvents<Vcores> {
        Process::events(self)
    }

    fn procdata(&self) -> ProcDataRef<'_> {
        ProcDataRef {
            kernel_evts: &Process::procdata(self).kernel_evts,
            vcpds: self.vcpds(),
        }
    }

    fn alloc_user_page(&self) -> Option<usize> {
        self.space().alloc_page()
    }

    fn ipi(&self, pcore: PcoreId) {
        // The vcore may have moved since the peek: the handler only counts
        // (the ring-3 return path delivers), so a stale target is a
        // spurious wake-up.
        sched::notify_pcore(pcore.get() as usize);
    }

    fn make_runnable(&self) {
        Process::make_runnable(self);
    }

    fn with_address_space<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.space().is_active() || address_space::kernel_active() {
            return f();
        }
        // Another process's tables: borrow the kernel's for the call.
        address_space::with_kernel_tables(f)
    }

    fn in_irq_context(&self) -> bool {
        percpu::current().in_interrupt()
    }
}
