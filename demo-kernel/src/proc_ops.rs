//! The host traits of event delivery, implemented for [`Process`]: this is
//! all a kernel writes to adopt `event-core`.
//!
//! | trait | here |
//! |---|---|
//! | `vcpd_abi::UserMemory` (`unsafe`) | the process's own range of the user region ([`UserSpace::translate`](crate::uspace::UserSpace::translate)): the real bounds check |
//! | `ucq::UserPageAlloc` | a zeroed page of the process's space |
//! | `ucq::UcqLocks` | a `ucq::HashLocks` in the kernel's process struct |
//! | `event_core::ProcOps` | state, lists and lock of process.rs; `ipi_vcore` = a fixed x2APIC IPI |
//!
//! Address spaces: every process's memory is mapped in every CPU's page
//! tables (the identity map), so `with_address_space` keeps its default;
//! what stops the kernel from touching another process's memory on this
//! process's behalf is `translate`, which knows only this process's range.

use core::ptr::NonNull;

use event_core::{EventStats, ProcOps};
use ucq::{UcqLocks, UserPageAlloc};
use vcpd_abi::UserMemory;

use crate::process::{ProcState, Process, VcoreList};
use crate::{percpu, sched};

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

impl UserPageAlloc for Process {
    fn alloc_user_page(&self) -> Option<usize> {
        self.space().alloc_page()
    }
}

impl UcqLocks for Process {
    fn with_ucq_lock<R>(&self, key: usize, f: impl FnOnce() -> R) -> R {
        // No interrupt handler sends events here (sends are refused in
        // interrupt context), so the lock need not disable interrupts.
        self.ucq_locks.with_ucq_lock(key, f)
    }
}

impl ProcOps for Process {
    fn is_mcp(&self) -> bool {
        Process::is_mcp(self)
    }

    fn is_dying(&self) -> bool {
        self.state() == ProcState::Dying
    }

    fn is_waiting(&self) -> bool {
        // event-core fences before asking (for WAKEUP): the last vcore's
        // yield sets WAITING, fences, then re-reads `notif_pending`, so one
        // side always sees the other (host rule 2).
        self.state() == ProcState::Waiting
    }

    fn num_vcores(&self) -> u32 {
        self.nr_vcores()
    }

    fn max_vcores(&self) -> u32 {
        self.nr_vcores()
    }

    fn vcore_is_mapped(&self, vcoreid: u32) -> bool {
        self.vcore_mapped(vcoreid)
    }

    fn online_head(&self) -> Option<u32> {
        self.head(VcoreList::Online)
    }

    fn bulk_preempted_head(&self) -> Option<u32> {
        self.head(VcoreList::BulkPreempted)
    }

    fn inactive_head(&self) -> Option<u32> {
        self.head(VcoreList::Inactive)
    }

    fn with_proc_lock<R>(&self, f: impl FnOnce() -> R) -> R {
        self.with_lock(f)
    }

    fn ipi_vcore(&self, vcoreid: u32) {
        // An unlocked read: the vcore may have moved since. The handler
        // only marks its core, so a stale target is a spurious wake-up
        // (rule 6), and the vcore's `notif_pending` is set regardless.
        if let Some(cpu) = self.vcore_pcore(vcoreid) {
            sched::notify_pcore(cpu);
        }
    }

    fn wakeup(&self) {
        Process::wakeup(self);
    }

    fn procdata_addr(&self) -> usize {
        Process::procdata_addr(self)
    }

    fn in_irq_context(&self) -> bool {
        percpu::current().in_interrupt()
    }

    fn stats(&self) -> &EventStats {
        Process::stats(self)
    }
}
