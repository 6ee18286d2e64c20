//! The host traits of event delivery, implemented for [`Process`]: this is
//! all a kernel writes to adopt `event-core` (six methods).
//!
//! | method | here |
//! |---|---|
//! | `vcpd_abi::UserMemory::translate` (`unsafe` trait) | the process's own range of the user region ([`UserSpace::translate`](crate::process::address_space::UserSpace::translate)): the real bounds check |
//! | `ProcOps::events` | the process's `ProcEvents`: event-core's `VcoreSet` under this kernel's [`IrqSpinLock`](crate::process::IrqSpinLock), counters, UCQ locks |
//! | `ProcOps::procdata` | its procdata, checked once |
//! | `ProcOps::alloc_user_page` | a zeroed page of the process's space |
//! | `ProcOps::ipi` | a fixed x2APIC IPI to that CPU |
//! | `ProcOps::make_runnable` | grant it free cores |
//!
//! Address spaces: every process's memory is mapped in every CPU's page
//! tables (the identity map), so `with_address_space` keeps its default;
//! what stops the kernel from touching another process's memory on this
//! process's behalf is `translate`, which knows only this process's range.

use core::ptr::NonNull;

use event_core::{PcoreId, ProcDataRef, ProcEvents, ProcOps};
use vcpd_abi::UserMemory;

use crate::platform::percpu;
use crate::process::sched;
use crate::process::{Process, Vcores};

// SAFETY: `translate` returns a pointer only for ranges entirely inside the
// process's `UserSpace`: a part of the user region (identity-mapped RAM,
// reserved at boot, never handed to the kernel's own allocator) that was
// reserved for this process and is never released, so the bytes stay valid
// for reads and writes for as long as the process exists. The kernel keeps
// no data of its own there: the process may write anything at any time. The
// pointer is the address itself (identity map), so alignment is preserved,
// and `UserSpace::contains` refuses ranges that wrap.
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
        // The vcore may have moved since the peek: the handler only marks
        // its core, so a stale target is a spurious wake-up.
        sched::notify_pcore(pcore.get() as usize);
    }

    fn make_runnable(&self) {
        Process::make_runnable(self);
    }

    fn in_irq_context(&self) -> bool {
        percpu::current().in_interrupt()
    }
}
