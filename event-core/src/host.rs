//! What a kernel provides: [`ProcOps`], implemented once per process type,
//! and [`ProcEvents`], the per-process state event delivery keeps in the
//! kernel's process struct.
//!
//! A kernel that uses the library's [`VcoreSet`](crate::vcores::VcoreSet)
//! implements six methods: `UserMemory::translate` and the five required
//! methods of [`ProcOps`]. Memory safety rests only on
//! [`UserMemory`] (an `unsafe trait`); guarantee 4 rests on the vcore
//! protocol, which `VcoreSet` keeps (see [`crate::vcores`] for a kernel
//! that keeps its own lists).
//!
//! `send_event` must not be called from interrupt context (it may take the
//! UCQ page-switch lock) and fails cleanly, rather than deadlocking, when
//! called on a CPU that holds the process lock.

use core::fmt;
use core::ptr::NonNull;

use ucq::{HashLocks, UcqLocks, UserPageAlloc};
use vcpd_abi::sync::AtomicUsize;
use vcpd_abi::{MAX_NR_EVENT, ProcDataN, UserMemory, Vcpd};

use crate::ids::PcoreId;
use crate::stats::{Counter, EventStats};
use crate::vcores::{ProcControl, VcoreLists};

/// A process, as event delivery sees it.
///
/// Supertrait: [`UserMemory`], the check every user address goes through.
pub trait ProcOps: UserMemory {
    /// Where the vcore lists live: normally
    /// [`VcoreSet`](crate::vcores::VcoreSet).
    type Vcores: VcoreLists + ProcControl;

    /// The process's event state in kernel memory (its vcores, counters
    /// and UCQ locks).
    fn events(&self) -> &ProcEvents<Self::Vcores>;

    /// The process's procdata (kernel-event table and VCPDs), as the
    /// kernel reaches it. Procdata is placed by the kernel and the process
    /// cannot move it, so it is checked once (when the process is made),
    /// not on every send.
    fn procdata(&self) -> ProcDataRef<'_>;

    /// Maps a zeroed, page-aligned, writable page into the process and
    /// returns its user address (UCQ growth), or `None`.
    fn alloc_user_page(&self) -> Option<usize>;

    /// Interrupts physical core `pcore` with the kernel's notification
    /// vector. The vcore may have left meanwhile: a spurious interrupt
    /// must be harmless.
    fn ipi(&self, pcore: PcoreId);

    /// The process left WAITING (an event with `WAKEUP` arrived): put it on
    /// the kernel's run queue. Its scheduler then grants cores, which
    /// start vcores from the inactive head. Called without any event lock.
    fn make_runnable(&self);

    /// Runs `f` with the process's address space loaded (Akaros's
    /// `switch_to` / `switch_back`). The default assumes it always is.
    fn with_address_space<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }

    /// Whether the caller runs in interrupt context, where sends are
    /// refused.
    fn in_irq_context(&self) -> bool {
        false
    }
}

/// A checked view of a process's procdata: its kernel-event table and its
/// VCPDs (as many as the process may have).
#[derive(Clone, Copy, Debug)]
pub struct ProcDataRef<'a> {
    /// `kernel_evts`: user addresses of event queues, one per event type.
    pub kernel_evts: &'a [AtomicUsize; MAX_NR_EVENT],
    /// The VCPD array.
    pub vcpds: &'a [Vcpd],
}

impl<'a, const V: usize> From<&'a ProcDataN<V>> for ProcDataRef<'a> {
    fn from(pd: &'a ProcDataN<V>) -> Self {
        Self {
            kernel_evts: &pd.kernel_evts,
            vcpds: &pd.vcpd,
        }
    }
}

/// Number of UCQ page-switch locks per process.
const UCQ_LOCKS: usize = 8;

/// The event state of one process, kept in kernel memory: its vcores (a
/// [`VcoreSet`](crate::vcores::VcoreSet) unless the kernel keeps its own
/// lists), its counters, and the UCQ producers' page-switch locks.
pub struct ProcEvents<V> {
    vcores: V,
    stats: EventStats,
    ucq_locks: HashLocks<UCQ_LOCKS>,
}

impl<V> ProcEvents<V> {
    /// Event state around the process's vcores.
    pub fn new(vcores: V) -> Self {
        Self {
            vcores,
            stats: EventStats::new(),
            ucq_locks: HashLocks::new(),
        }
    }

    /// The vcores: lists, mappings, state and every transition.
    pub fn vcores(&self) -> &V {
        &self.vcores
    }

    /// The counters.
    pub fn stats(&self) -> &EventStats {
        &self.stats
    }
}

impl<V: fmt::Debug> fmt::Debug for ProcEvents<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcEvents")
            .field("vcores", &self.vcores)
            .finish_non_exhaustive()
    }
}

/// What the UCQ producer needs, assembled from a [`ProcOps`]: its memory
/// checks and pages, and the locks in its [`ProcEvents`].
pub(crate) struct UcqHost<'a, P>(pub(crate) &'a P);

// SAFETY: forwards to the process's own `UserMemory`, which keeps the
// contract.
unsafe impl<P: Sending> UserMemory for UcqHost<'_, P> {
    #[inline]
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        self.0.translate(addr, len)
    }
}

impl<P: Sending> UserPageAlloc for UcqHost<'_, P> {
    fn alloc_user_page(&self) -> Option<usize> {
        self.0.alloc_user_page()
    }
}

impl<P: Sending> UcqLocks for UcqHost<'_, P> {
    fn with_ucq_lock<R>(&self, key: usize, f: impl FnOnce() -> R) -> R {
        self.0.events().ucq_locks.with_ucq_lock(key, f)
    }

    /// The sending CPU: the UCQ's posted count is per CPU too, under the
    /// same contract as event-core's counters.
    #[inline]
    fn cpu_index(&self) -> Option<usize> {
        Some(self.0.cpu())
    }
}

/// A process as the send path sees it: the host, and the sending CPU's
/// index, read once per send for the per-CPU counters.
pub(crate) struct OnCpu<'p, P> {
    p: &'p P,
    cpu: usize,
}

impl<'p, P: ProcOps> OnCpu<'p, P> {
    #[inline]
    pub(crate) fn new(p: &'p P) -> Self {
        Self {
            p,
            cpu: p.events().vcores().cpu_index(),
        }
    }
}

/// The send path's own bound: a [`ProcOps`] that also knows the sending
/// CPU, so counting is a plain per-CPU increment.
pub(crate) trait Sending: ProcOps {
    /// The sending CPU's index.
    fn cpu(&self) -> usize;

    /// Adds `n` to counter `c`.
    fn count_n(&self, c: Counter, n: u64);

    /// Adds one to counter `c`.
    #[inline]
    fn count(&self, c: Counter) {
        self.count_n(c, 1);
    }
}

impl<P: ProcOps> Sending for OnCpu<'_, P> {
    #[inline]
    fn cpu(&self) -> usize {
        self.cpu
    }

    #[inline]
    fn count_n(&self, c: Counter, n: u64) {
        self.p.events().stats().add(self.cpu, c, n);
    }
}

// SAFETY: forwards to the process's own `UserMemory`.
unsafe impl<P: ProcOps> UserMemory for OnCpu<'_, P> {
    #[inline]
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        self.p.translate(addr, len)
    }
}

impl<P: ProcOps> ProcOps for OnCpu<'_, P> {
    type Vcores = P::Vcores;
    #[inline]
    fn events(&self) -> &ProcEvents<P::Vcores> {
        self.p.events()
    }
    #[inline]
    fn procdata(&self) -> ProcDataRef<'_> {
        self.p.procdata()
    }
    #[inline]
    fn alloc_user_page(&self) -> Option<usize> {
        self.p.alloc_user_page()
    }
    #[inline]
    fn ipi(&self, pcore: PcoreId) {
        self.p.ipi(pcore);
    }
    #[inline]
    fn make_runnable(&self) {
        self.p.make_runnable();
    }
    #[inline]
    fn with_address_space<R>(&self, f: impl FnOnce() -> R) -> R {
        self.p.with_address_space(f)
    }
    #[inline]
    fn in_irq_context(&self) -> bool {
        self.p.in_irq_context()
    }
}
