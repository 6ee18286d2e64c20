//! [`ProcOps`]: what event delivery needs to know about, and do to, a
//! process. A kernel implements it once per process type.
//!
//! # The protocol the host must keep
//!
//! Memory safety rests only on [`UserMemory`](vcpd_abi::UserMemory) (an
//! `unsafe trait`, inherited through [`ucq::ProducerHost`]). The guarantee
//! that no spammed message is lost additionally rests on the host keeping
//! these rules, which mirror the kernel Akaros's event code was written for:
//!
//! 1. Every vcore id below [`max_vcores`](ProcOps::max_vcores) of an MCP is
//!    on exactly one of three ordered lists: online, bulk-preempted,
//!    inactive. The `*_head` peeks read the current head with an atomic load
//!    (acquire) and may be called without the process lock.
//! 2. Yield (a vcore giving up its core), under the process lock: refuse if
//!    the vcore's `notif_pending` is set; otherwise remove it from the online
//!    list and, if it was the last vcore online or bulk-preempted, set the
//!    process WAITING; then issue a `SeqCst` fence and check `notif_pending`
//!    again. If it is now set, undo both (back on the online list, not
//!    WAITING) and refuse. Only then put the vcore at the *head* of the
//!    inactive list. (A sender posts, sets `notif_pending`, fences, and then
//!    checks whether the vcore is still the list head, or whether the
//!    process is WAITING and needs a wakeup: each side sees the other.)
//!    An SCP's yield is the same without lists: refuse on `notif_pending`,
//!    set WAITING, fence, re-check, undo if set.
//! 3. A vcore that comes back online (restarted after a bulk preemption, or
//!    started from the inactive list) checks its mailboxes before running
//!    anything else; a vcore coming online sets its `CAN_RCV_MSG`.
//! 4. Restarting a process (wakeup, or granting cores) takes vcores from the
//!    head of the inactive list first: the inactive head is "the vcore that
//!    will be woken", and, with yields going to the head, the vcore that
//!    yielded last.
//! 5. While [`with_proc_lock`](ProcOps::with_proc_lock) runs its closure,
//!    the lists and the process state do not change.
//! 6. [`ipi_vcore`](ProcOps::ipi_vcore) interrupts the physical core a
//!    vcore is mapped to; a spurious interrupt (the vcore moved) must be
//!    harmless. The interrupt handler leaves event handling to vcore code.
//!
//! `send_event` must not be called with the process lock held (it may take
//! it), nor from interrupt context (it may take the UCQ lock).

use crate::stats::EventStats;

/// A process, as the event layer sees it.
pub trait ProcOps: ucq::ProducerHost {
    /// A many-core process (as opposed to a single-core one: vcore 0 only).
    fn is_mcp(&self) -> bool;
    /// The process is being destroyed: events are dropped silently.
    fn is_dying(&self) -> bool;
    /// The process is WAITING: every vcore yielded, waiting for an event.
    fn is_waiting(&self) -> bool;
    /// The number of vcores the process has asked for (round-robin range).
    fn num_vcores(&self) -> u32;
    /// The bound on vcore ids the kernel will touch (at most
    /// [`MAX_NUM_VCORES`](vcpd_abi::MAX_NUM_VCORES)).
    fn max_vcores(&self) -> u32;
    /// Whether the vcore is mapped to a physical core now (unlocked peek).
    fn vcore_is_mapped(&self, vcoreid: u32) -> bool;
    /// Head of the online list (unlocked peek).
    fn online_head(&self) -> Option<u32>;
    /// Head of the bulk-preempted list (unlocked peek).
    fn bulk_preempted_head(&self) -> Option<u32>;
    /// Head of the inactive list (unlocked peek).
    fn inactive_head(&self) -> Option<u32>;
    /// Runs `f` under the process lock: lists and state stay put meanwhile.
    fn with_proc_lock<R>(&self, f: impl FnOnce() -> R) -> R;
    /// Interrupts the physical core the vcore is mapped to, if any.
    fn ipi_vcore(&self, vcoreid: u32);
    /// Wakes a WAITING process (makes it runnable; vcores then start from
    /// the inactive list's head).
    fn wakeup(&self);
    /// User address of the process's procdata (`vcpd_abi::ProcData` layout
    /// with at least `max_vcores()` VCPDs).
    fn procdata_addr(&self) -> usize;
    /// Runs `f` with the process's address space loaded (switch_to /
    /// switch_back). The default assumes it always is.
    fn with_address_space<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }
    /// Whether the caller runs in interrupt context (where sends are refused).
    fn in_irq_context(&self) -> bool {
        false
    }
    /// The process's event counters.
    fn stats(&self) -> &EventStats;
}
