//! The vcore lifecycle: which vcores are online, bulk-preempted or
//! inactive, and the transitions between them.
//!
//! Guarantee 4 (a spammed message always reaches a vcore that will check
//! it) is a handshake between the send path and these transitions. The
//! send path reaches them only through two traits:
//!
//! - [`VcoreLists`]: unlocked peeks at the three list heads, at where each
//!   vcore runs, and at the process's event-visible [`ProcState`];
//! - [`ProcControl`]: the process lock (the locked fallback) and the
//!   wakeup of a WAITING process.
//!
//! [`VcoreSet`] is the library's implementation of both, with every
//! transition (grant, yield, bulk preemption, restart, wakeup, destroy) as
//! a method that does its own locking, fences and re-checks, and returns
//! what the kernel must do next instead of calling back into it. It is
//! what the loom models, the simulated kernel and the demo kernel run, and
//! the one a new kernel should pick.
//!
//! # The protocol, for a kernel that keeps its own lists
//!
//! A kernel whose scheduler already has vcore lists may implement the two
//! traits itself. The send path is then correct only if it keeps these
//! rules, which [`VcoreSet`] keeps (read its source as the reference):
//!
//! 1. Every vcore of an MCP is on exactly one of three ordered lists:
//!    online, bulk-preempted, inactive. The heads are published in atomics
//!    (release) after every change, so [`VcoreLists::head`] may run without
//!    the lock. A vcore is mapped ([`VcoreLists::pcore_of`] is `Some`)
//!    exactly while it is online, and an unmapped vcore's slot is cleared
//!    before the yield's fence below.
//! 2. Yield, under the lock: refuse if the vcore's `notif_pending` is set;
//!    otherwise take it off the online list and unmap it, set WAITING if no
//!    vcore is left online or bulk-preempted, publish, issue a `SeqCst`
//!    fence, and read `notif_pending` again: if set, undo all of it and
//!    refuse. Only then put the vcore at the *head* of the inactive list.
//!    An SCP does the same without lists.
//! 3. A vcore coming online runs the receive half's `vcore_online` before
//!    anything else; a vcore restarted after a bulk preemption gets its
//!    `notif_pending` set so it checks its mailboxes first.
//! 4. Granting cores takes vcores from the head of the inactive list.
//! 5. While [`ProcControl::with_lock`] runs its closure, the lists, the
//!    mappings and the state do not change.
//! 6. [`ProcOps::ipi`](crate::ProcOps::ipi) to a core the vcore has left
//!    is harmless (a spurious interrupt).
//! 7. A send made on a CPU that holds the lock gets [`LockHeld`] instead of
//!    spinning forever.

mod lock;
mod set;

use core::fmt;

#[cfg(loom)]
pub use lock::LoomLock;
pub use lock::{DefaultLock, RawLock};
pub use set::{Deschedule, ProcKind, Refused, Run, Stop, VcoreSet};

use crate::ids::{PcoreId, VcoreId};

/// The three vcore lists of an MCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VcoreList {
    /// Vcores mapped to a physical core.
    Online = 0,
    /// Vcores the kernel took away from a running process; they will be
    /// restarted.
    BulkPreempted = 1,
    /// Yielded or never-started vcores; the head is started first.
    Inactive = 2,
}

/// What the send path needs to know of a process's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ProcState {
    /// Running or runnable (it has, or will be given, cores).
    Running = 0,
    /// Every vcore yielded: only an event with `WAKEUP` brings it back.
    Waiting = 1,
    /// Being destroyed: events to it are dropped.
    Dying = 2,
}

impl ProcState {
    pub(crate) const fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Running,
            1 => Self::Waiting,
            _ => Self::Dying,
        }
    }
}

/// The calling CPU already holds this process's lock: taking it again
/// would spin forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockHeld {
    /// The CPU (the host's index) that tried.
    pub cpu: usize,
}

impl fmt::Display for LockHeld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu {} already holds the process lock", self.cpu)
    }
}

impl core::error::Error for LockHeld {}

/// Unlocked peeks at the vcore lists and the process state. Each answer
/// may be stale by the time the caller acts on it; the send path is built
/// for that (post, fence, re-check).
pub trait VcoreLists {
    /// A many-core process (an SCP has only vcore 0 and no lists).
    fn is_mcp(&self) -> bool;
    /// The event-visible state.
    fn state(&self) -> ProcState;
    /// Vcores granted now (online): Akaros's `num_vcores`, 0 while the
    /// process is WAITING or fully preempted.
    fn num_vcores(&self) -> u32;
    /// The bound on vcore ids (at most
    /// [`MAX_NUM_VCORES`](vcpd_abi::MAX_NUM_VCORES)).
    fn max_vcores(&self) -> u32;
    /// The physical core vcore `v` is mapped to, if it is mapped.
    fn pcore_of(&self, v: VcoreId) -> Option<PcoreId>;
    /// The head of `list` (always `None` for an SCP).
    fn head(&self, list: VcoreList) -> Option<VcoreId>;
}

/// The process lock, and the transition the send path itself makes.
pub trait ProcControl {
    /// The calling CPU's index (the host's numbering, unique per CPU). Two
    /// sends never run at once with the same index (a kernel that preempts
    /// kernel code keeps preemption off around a send, or gives threads
    /// indices of their own): the per-CPU counters rely on it, and the lock
    /// uses it to tell re-entry from contention.
    fn cpu_index(&self) -> usize;
    /// Runs `f` with the lock held: lists, mappings and state stay put.
    /// Fails, without running `f`, if this CPU already holds the lock.
    fn with_lock<R>(&self, f: impl FnOnce() -> R) -> Result<R, LockHeld>;
    /// WAITING → runnable. `Ok(true)` if the process was WAITING: the
    /// kernel must then schedule it (give it cores).
    ///
    /// ```
    /// use event_core::abi::ProcDataN;
    /// use event_core::vcores::{ProcControl, ProcKind, ProcState, VcoreLists, VcoreSet};
    /// use event_core::PcoreId;
    ///
    /// let pd = ProcDataN::<1>::new();
    /// let set: VcoreSet<1> = VcoreSet::new(ProcKind::Mcp, 1, || 0);
    /// let v = set.grant(PcoreId::new(0)).unwrap().vcore;
    /// assert!(set.yield_vcore(&pd.vcpd, v).unwrap().waiting);
    /// assert_eq!(set.wakeup(), Ok(true)); // the kernel must schedule it
    /// assert_eq!(set.state(), ProcState::Running);
    /// assert_eq!(set.wakeup(), Ok(false));
    /// ```
    fn wakeup(&self) -> Result<bool, LockHeld>;
}
