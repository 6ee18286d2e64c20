//! [`VcoreSet`]: the vcore lists, mappings and process state of one
//! process, and every transition between them.

use core::cell::UnsafeCell;
use core::fmt;

use heapless::Vec;
use vcpd_abi::sync::{AtomicU8, AtomicU32, AtomicUsize, Ordering, fence};
use vcpd_abi::{MAX_NUM_VCORES, Vcpd, VcpdFlags};

use super::lock::{DefaultLock, RawLock};
use super::{LockHeld, ProcControl, ProcState, VcoreList, VcoreLists};
use crate::ids::{NONE, PcoreId, VcoreId};

/// Single-core or many-core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcKind {
    /// A single-core process: vcore 0 only, no lists.
    Scp,
    /// A many-core process: vcores on the online, bulk-preempted and
    /// inactive lists.
    Mcp,
}

/// Why a transition did not happen. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The vcore has a message pending (`notif_pending`): it must handle it
    /// before it may yield. Return to the vcore.
    NotifPending,
    /// The vcore is not online (e.g. it is being preempted).
    NotOnline,
    /// The vcore is not on the bulk-preempted list.
    NotPreempted,
    /// No inactive vcore is left to grant.
    NoInactiveVcore,
    /// The SCP's vcore is already mapped.
    AlreadyMapped,
    /// Bulk preemption is for MCPs.
    NotMcp,
    /// The vcore id is not below the process's vcore count.
    BadVcore(VcoreId),
    /// The process is dying.
    Dying,
    /// This CPU already holds the process lock.
    LockHeld(LockHeld),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotifPending => f.write_str("a notification is pending"),
            Self::NotOnline => f.write_str("the vcore is not online"),
            Self::NotPreempted => f.write_str("the vcore is not bulk-preempted"),
            Self::NoInactiveVcore => f.write_str("no inactive vcore left"),
            Self::AlreadyMapped => f.write_str("the SCP's vcore is already mapped"),
            Self::NotMcp => f.write_str("not a many-core process"),
            Self::BadVcore(v) => write!(f, "{v:?} is out of range"),
            Self::Dying => f.write_str("the process is dying"),
            Self::LockHeld(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for Refused {}

impl From<LockHeld> for Refused {
    fn from(e: LockHeld) -> Self {
        Self::LockHeld(e)
    }
}

/// Next step for the kernel: run `vcore` on `pcore` (from its entry point
/// after a grant; resumed, after a restart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "the kernel must run the vcore on that core"]
pub struct Run {
    /// The vcore.
    pub vcore: VcoreId,
    /// Its core.
    pub pcore: PcoreId,
}

/// Next step for the kernel: `vcore` gave up `pcore`; free the core. If
/// `waiting`, the process is WAITING now (it sleeps until a wakeup).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "the kernel must take the vcore off its core"]
pub struct Deschedule {
    /// The vcore that left.
    pub vcore: VcoreId,
    /// The core it left.
    pub pcore: PcoreId,
    /// It was the last one: the process is WAITING.
    pub waiting: bool,
}

/// Next step for the kernel: stop `vcore` on `pcore` (interrupt it, save
/// its context in its VCPD); the core is then free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "the kernel must stop the vcore on that core"]
pub struct Stop {
    /// The vcore to stop.
    pub vcore: VcoreId,
    /// Where it runs.
    pub pcore: PcoreId,
}

/// The lists, in order; index 0 is the head.
struct Lists<const N: usize> {
    online: Vec<VcoreId, N>,
    bulk_preempted: Vec<VcoreId, N>,
    inactive: Vec<VcoreId, N>,
}

impl<const N: usize> Lists<N> {
    fn get(&self, list: VcoreList) -> &Vec<VcoreId, N> {
        match list {
            VcoreList::Online => &self.online,
            VcoreList::BulkPreempted => &self.bulk_preempted,
            VcoreList::Inactive => &self.inactive,
        }
    }
}

/// One process's vcores: the online / bulk-preempted / inactive lists with
/// atomically published heads, where each vcore runs, how many are
/// granted, and the process's event-visible state, behind one lock.
///
/// `N` is the capacity (at most [`MAX_NUM_VCORES`]); `L` the lock
/// ([`DefaultLock`]: `spin`'s). No allocation; `no_std`.
///
/// Every transition takes the lock itself and returns what the kernel must
/// do next; none calls into the kernel. Each refuses with
/// [`Refused::LockHeld`] when the calling CPU already holds the lock (the
/// set learns the CPU from the `cpu_index` function given to
/// [`new`](Self::new)).
///
/// ```
/// use event_core::vcores::{ProcKind, VcoreSet};
/// use event_core::{PcoreId, VcoreId};
/// use vcpd_abi::ProcDataN;
///
/// let procdata = ProcDataN::<2>::new();
/// let set: VcoreSet<2> = VcoreSet::new(ProcKind::Mcp, 2, || 0);
/// // The scheduler gives the process a core: the inactive head starts.
/// let run = set.grant(PcoreId::new(5)).unwrap();
/// assert_eq!(run.vcore, VcoreId::ZERO);
/// // Vcore 0 yields; it was the only one online, so the process waits.
/// let left = set.yield_vcore(&procdata.vcpd, run.vcore).unwrap();
/// assert!(left.waiting && left.pcore == PcoreId::new(5));
/// ```
pub struct VcoreSet<const N: usize = MAX_NUM_VCORES, L: RawLock = DefaultLock> {
    lock: L,
    /// Host CPU index + 1 of the lock holder; 0 when free.
    holder: AtomicUsize,
    lists: UnsafeCell<Lists<N>>,
    /// Published heads, indexed by [`VcoreList`] ([`NONE`] when empty).
    heads: [AtomicU32; 3],
    /// The core each vcore is mapped to ([`NONE`]: unmapped).
    pcores: [AtomicU32; N],
    /// Vcores online.
    granted: AtomicU32,
    state: AtomicU8,
    kind: ProcKind,
    nr_vcores: u32,
    cpu_index: fn() -> usize,
}

// SAFETY: the lists are only touched with the lock held (`locked`), which
// serialises every access; everything else is atomics.
unsafe impl<const N: usize, L: RawLock + Sync> Sync for VcoreSet<N, L> {}
// SAFETY: nothing in the set is tied to a thread.
unsafe impl<const N: usize, L: RawLock + Send> Send for VcoreSet<N, L> {}

impl<const N: usize, L: RawLock> fmt::Debug for VcoreSet<N, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VcoreSet")
            .field("kind", &self.kind)
            .field("state", &self.state())
            .field("online_head", &self.head(VcoreList::Online))
            .field("bulk_preempted_head", &self.head(VcoreList::BulkPreempted))
            .field("inactive_head", &self.head(VcoreList::Inactive))
            .field("granted", &self.num_vcores())
            .finish_non_exhaustive()
    }
}

/// Holds the lock; releases it when dropped.
struct Held<'a, const N: usize, L: RawLock> {
    set: &'a VcoreSet<N, L>,
}

impl<const N: usize, L: RawLock> Drop for Held<'_, N, L> {
    fn drop(&mut self) {
        self.set.holder.store(0, Ordering::Relaxed);
        // SAFETY: a `Held` exists only while its creator holds the lock.
        unsafe { self.set.lock.unlock() }
    }
}

impl<const N: usize, L: RawLock> VcoreSet<N, L> {
    /// A set of `nr_vcores` vcores, all inactive (in id order) and
    /// unmapped, the process runnable. `cpu_index` returns the calling
    /// CPU's index (any numbering, unique per CPU): it is how the set tells
    /// a re-entrant lock attempt from contention.
    ///
    /// # Panics
    /// If `nr_vcores` is 0 or more than `N`, or `N` is more than
    /// [`MAX_NUM_VCORES`].
    pub fn new(kind: ProcKind, nr_vcores: u32, cpu_index: fn() -> usize) -> Self {
        assert!(
            N <= MAX_NUM_VCORES,
            "a VcoreSet holds at most MAX_NUM_VCORES"
        );
        assert!(
            nr_vcores > 0 && nr_vcores as usize <= N,
            "nr_vcores must be in 1..={N}"
        );
        let mut inactive = Vec::new();
        if kind == ProcKind::Mcp {
            for v in 0..nr_vcores {
                // Cannot fail: nr_vcores <= N.
                let _ = inactive.push(VcoreId(v));
            }
        }
        let set = Self {
            lock: L::new_unlocked(),
            holder: AtomicUsize::new(0),
            lists: UnsafeCell::new(Lists {
                online: Vec::new(),
                bulk_preempted: Vec::new(),
                inactive,
            }),
            heads: core::array::from_fn(|_| AtomicU32::new(NONE)),
            pcores: core::array::from_fn(|_| AtomicU32::new(NONE)),
            granted: AtomicU32::new(0),
            state: AtomicU8::new(ProcState::Running as u8),
            kind,
            nr_vcores,
            cpu_index,
        };
        // Nobody else can see the set yet.
        let _ = set.locked(|l| set.publish(l));
        set
    }

    /// Single-core or many-core.
    pub fn kind(&self) -> ProcKind {
        self.kind
    }

    /// Whether vcore `v` is mapped to a core now (an unlocked peek).
    pub fn is_mapped(&self, v: VcoreId) -> bool {
        self.pcore_of(v).is_some()
    }

    /// Runs `f` on the lists with the lock held. Checks the invariants
    /// afterwards in debug builds.
    fn locked<R>(&self, f: impl FnOnce(&mut Lists<N>) -> R) -> Result<R, LockHeld> {
        let cpu = (self.cpu_index)();
        // Only this CPU ever stores `cpu + 1`, and it clears it before it
        // unlocks: a stale read cannot show our own id.
        if self.holder.load(Ordering::Relaxed) == cpu.wrapping_add(1) {
            return Err(LockHeld { cpu });
        }
        self.lock.lock();
        self.holder.store(cpu.wrapping_add(1), Ordering::Relaxed);
        let held = Held { set: self };
        // SAFETY: we hold the lock, and every access to `lists` is made
        // through this function; `f` cannot reach `locked` again (it would
        // get `LockHeld`), so this is the only live reference.
        let lists = unsafe { &mut *self.lists.get() };
        let r = f(lists);
        #[cfg(debug_assertions)]
        self.check_invariants(lists);
        drop(held);
        Ok(r)
    }

    fn publish(&self, l: &Lists<N>) {
        for list in [
            VcoreList::Online,
            VcoreList::BulkPreempted,
            VcoreList::Inactive,
        ] {
            let head = l.get(list).first().copied();
            self.heads[list as usize].store(VcoreId::to_slot(head), Ordering::Release);
        }
    }

    fn set_state(&self, s: ProcState) {
        self.state.store(s as u8, Ordering::Release);
    }

    fn map(&self, v: VcoreId, pcore: PcoreId) {
        self.pcores[v.index()].store(pcore.get(), Ordering::Release);
        self.granted.fetch_add(1, Ordering::Relaxed);
    }

    fn unmap(&self, v: VcoreId) -> Option<PcoreId> {
        let old = PcoreId::from_slot(self.pcores[v.index()].swap(NONE, Ordering::AcqRel));
        if old.is_some() {
            self.granted.fetch_sub(1, Ordering::Relaxed);
        }
        old
    }

    fn check_vcore(&self, v: VcoreId) -> Result<(), Refused> {
        if v.get() < self.nr_vcores {
            Ok(())
        } else {
            Err(Refused::BadVcore(v))
        }
    }

    fn vcpd<'v>(&self, vcpds: &'v [Vcpd], v: VcoreId) -> Option<&'v Vcpd> {
        let vcpd = vcpds.get(v.index());
        if vcpd.is_none() {
            log::warn!("vcores: no VCPD for {v:?} ({} given)", vcpds.len());
        }
        vcpd
    }

    #[cfg(debug_assertions)]
    fn check_invariants(&self, l: &Lists<N>) {
        if self.kind == ProcKind::Scp || self.state() == ProcState::Dying {
            return;
        }
        for v in (0..self.nr_vcores).map(VcoreId) {
            let on = [&l.online, &l.bulk_preempted, &l.inactive]
                .iter()
                .map(|list| list.iter().filter(|&&x| x == v).count())
                .sum::<usize>();
            assert_eq!(on, 1, "{v:?} is on {on} lists");
            assert_eq!(
                self.is_mapped(v),
                l.online.contains(&v),
                "{v:?}: mapped disagrees with the online list"
            );
        }
    }

    /// Gives the process `pcore`: the inactive list's head goes online
    /// there (an SCP's vcore 0, if it is not mapped). The process is
    /// runnable afterwards (a grant to a WAITING process wakes it).
    ///
    /// Returns the vcore to start on `pcore`; its code must run the
    /// receive half's `vcore_online` first.
    pub fn grant(&self, pcore: PcoreId) -> Result<Run, Refused> {
        self.locked(|l| {
            if self.state() == ProcState::Dying {
                return Err(Refused::Dying);
            }
            let vcore = match self.kind {
                ProcKind::Scp => {
                    if self.is_mapped(VcoreId::ZERO) {
                        return Err(Refused::AlreadyMapped);
                    }
                    VcoreId::ZERO
                }
                ProcKind::Mcp => {
                    let Some(&v) = l.inactive.first() else {
                        return Err(Refused::NoInactiveVcore);
                    };
                    l.inactive.remove(0);
                    // Cannot fail: every vcore is on exactly one list.
                    let _ = l.online.push(v);
                    v
                }
            };
            self.map(vcore, pcore);
            self.set_state(ProcState::Running);
            self.publish(l);
            Ok(Run { vcore, pcore })
        })?
    }

    /// The kernel's half of a yield by vcore `v` (the receive half's
    /// `prepare_to_yield` ran first): refused while `notif_pending` is set;
    /// otherwise `v` leaves its core for the head of the inactive list, and
    /// if it was the last vcore online or bulk-preempted the process is
    /// WAITING.
    ///
    /// ```
    /// use core::sync::atomic::Ordering;
    /// use event_core::vcores::{ProcKind, Refused, VcoreList, VcoreLists, VcoreSet};
    /// use event_core::{PcoreId, VcoreId};
    ///
    /// let pd = event_core::abi::ProcDataN::<2>::new();
    /// let set: VcoreSet<2> = VcoreSet::new(ProcKind::Mcp, 2, || 0);
    /// let a = set.grant(PcoreId::new(4)).unwrap().vcore;
    /// let b = set.grant(PcoreId::new(5)).unwrap().vcore;
    /// // A message is pending for `a`: its yield is refused.
    /// pd.vcpd[a.index()].notif_pending.store(true, Ordering::Relaxed);
    /// assert_eq!(set.yield_vcore(&pd.vcpd, a), Err(Refused::NotifPending));
    /// // `b` yields: its core is free, the process still runs `a`.
    /// let left = set.yield_vcore(&pd.vcpd, b).unwrap();
    /// assert_eq!((left.pcore, left.waiting), (PcoreId::new(5), false));
    /// assert_eq!(set.head(VcoreList::Inactive), Some(b));
    /// ```
    pub fn yield_vcore(&self, vcpds: &[Vcpd], v: VcoreId) -> Result<Deschedule, Refused> {
        self.check_vcore(v)?;
        let vcpd = self.vcpd(vcpds, v).ok_or(Refused::BadVcore(v))?;
        let pending = || vcpd.notif_pending.load(Ordering::Acquire);
        self.locked(|l| {
            if self.state() == ProcState::Dying {
                return Err(Refused::Dying);
            }
            let pos = match self.kind {
                ProcKind::Mcp => Some(
                    l.online
                        .iter()
                        .position(|&x| x == v)
                        .ok_or(Refused::NotOnline)?,
                ),
                ProcKind::Scp if self.is_mapped(v) => None,
                ProcKind::Scp => return Err(Refused::NotOnline),
            };
            if pending() {
                return Err(Refused::NotifPending);
            }
            if let Some(pos) = pos {
                l.online.remove(pos);
            }
            let Some(pcore) = self.unmap(v) else {
                unreachable!("an online vcore is mapped")
            };
            let waiting = l.online.is_empty() && l.bulk_preempted.is_empty();
            if waiting {
                self.set_state(ProcState::Waiting);
            }
            self.publish(l);
            // Store-load: unlinked, unmapped and WAITING must be visible
            // before we read `notif_pending` again. A sender posts, sets
            // `notif_pending`, fences, then reads the list head, the
            // mapping or the state: one of us sees the other's write.
            fence(Ordering::SeqCst);
            if pending() {
                if let Some(pos) = pos {
                    // Cannot fail: we just removed it.
                    let _ = l.online.insert(pos, v);
                }
                self.map(v, pcore);
                self.set_state(ProcState::Running);
                self.publish(l);
                return Err(Refused::NotifPending);
            }
            if self.kind == ProcKind::Mcp {
                // The vcore that yielded last is the first to come back.
                let _ = l.inactive.insert(0, v);
                self.publish(l);
            }
            Ok(Deschedule {
                vcore: v,
                pcore,
                waiting,
            })
        })?
    }

    /// Bulk-preempts online vcore `v`: it moves to the bulk-preempted list
    /// (it will be restarted), `VC_PREEMPTED` is set in its VCPD, and it is
    /// unmapped. It keeps `CAN_RCV_MSG`: it checks its mailboxes when it
    /// comes back, and other vcores may recover its public mailbox meanwhile.
    ///
    /// ```
    /// use core::sync::atomic::Ordering;
    /// use event_core::abi::VcpdFlags;
    /// use event_core::vcores::{ProcKind, VcoreList, VcoreLists, VcoreSet};
    /// use event_core::PcoreId;
    ///
    /// let pd = event_core::abi::ProcDataN::<2>::new();
    /// let set: VcoreSet<2> = VcoreSet::new(ProcKind::Mcp, 2, || 0);
    /// let v = set.grant(PcoreId::new(1)).unwrap().vcore;
    /// let stop = set.preempt(&pd.vcpd, v).unwrap();
    /// assert_eq!(stop.pcore, PcoreId::new(1)); // interrupt that core
    /// assert_eq!(set.head(VcoreList::BulkPreempted), Some(v));
    /// assert!(pd.vcpd[v.index()].flags(Ordering::Relaxed).contains(VcpdFlags::PREEMPTED));
    /// ```
    pub fn preempt(&self, vcpds: &[Vcpd], v: VcoreId) -> Result<Stop, Refused> {
        self.check_vcore(v)?;
        self.locked(|l| self.preempt_locked(l, vcpds, v))?
    }

    /// Bulk-preempts every online vcore (in list order).
    pub fn preempt_all(&self, vcpds: &[Vcpd]) -> Result<Vec<Stop, N>, Refused> {
        self.locked(|l| {
            let mut stops = Vec::new();
            while let Some(&v) = l.online.first() {
                let stop = self.preempt_locked(l, vcpds, v)?;
                // Cannot fail: at most N vcores.
                let _ = stops.push(stop);
            }
            Ok(stops)
        })?
    }

    fn preempt_locked(
        &self,
        l: &mut Lists<N>,
        vcpds: &[Vcpd],
        v: VcoreId,
    ) -> Result<Stop, Refused> {
        match self.state() {
            ProcState::Dying => return Err(Refused::Dying),
            _ if self.kind == ProcKind::Scp => return Err(Refused::NotMcp),
            _ => {}
        }
        let pos = l
            .online
            .iter()
            .position(|&x| x == v)
            .ok_or(Refused::NotOnline)?;
        l.online.remove(pos);
        // Cannot fail: every vcore is on exactly one list.
        let _ = l.bulk_preempted.push(v);
        if let Some(vcpd) = self.vcpd(vcpds, v) {
            vcpd.set_flags(VcpdFlags::PREEMPTED, Ordering::SeqCst);
        }
        let Some(pcore) = self.unmap(v) else {
            unreachable!("an online vcore is mapped")
        };
        self.publish(l);
        Ok(Stop { vcore: v, pcore })
    }

    /// Restarts bulk-preempted vcore `v` on `pcore`: it goes online,
    /// `VC_PREEMPTED` is cleared, and its `notif_pending` is set so it
    /// checks its mailboxes before resuming (messages were spammed to it
    /// while it was away).
    ///
    /// ```
    /// use core::sync::atomic::Ordering;
    /// use event_core::vcores::{ProcKind, VcoreLists, VcoreSet};
    /// use event_core::PcoreId;
    ///
    /// let pd = event_core::abi::ProcDataN::<1>::new();
    /// let set: VcoreSet<1> = VcoreSet::new(ProcKind::Mcp, 1, || 0);
    /// let v = set.grant(PcoreId::new(1)).unwrap().vcore;
    /// let _stop = set.preempt(&pd.vcpd, v).unwrap();
    /// let run = set.restart(&pd.vcpd, v, PcoreId::new(2)).unwrap();
    /// assert_eq!((run.vcore, run.pcore), (v, PcoreId::new(2)));
    /// // It checks its mailboxes before resuming.
    /// assert!(pd.vcpd[0].notif_pending.load(Ordering::Relaxed));
    /// assert_eq!(set.pcore_of(v), Some(PcoreId::new(2)));
    /// ```
    pub fn restart(&self, vcpds: &[Vcpd], v: VcoreId, pcore: PcoreId) -> Result<Run, Refused> {
        self.check_vcore(v)?;
        self.locked(|l| {
            if self.state() == ProcState::Dying {
                return Err(Refused::Dying);
            }
            let pos = l
                .bulk_preempted
                .iter()
                .position(|&x| x == v)
                .ok_or(Refused::NotPreempted)?;
            l.bulk_preempted.remove(pos);
            // Cannot fail: every vcore is on exactly one list.
            let _ = l.online.push(v);
            if let Some(vcpd) = self.vcpd(vcpds, v) {
                vcpd.clear_flags(VcpdFlags::PREEMPTED, Ordering::SeqCst);
                vcpd.notif_pending.swap(true, Ordering::AcqRel);
            }
            self.map(v, pcore);
            self.set_state(ProcState::Running);
            self.publish(l);
            Ok(Run { vcore: v, pcore })
        })?
    }

    /// The vcores on `list`, in order (a snapshot taken under the lock):
    /// e.g. the bulk-preempted ones a scheduler restarts, or the online
    /// ones it may preempt.
    pub fn members(&self, list: VcoreList) -> Result<Vec<VcoreId, N>, Refused> {
        Ok(self.locked(|l| l.get(list).clone())?)
    }

    /// Destroys the process: DYING (every send is dropped from now on) and
    /// every vcore unmapped. Returns the vcores the kernel must stop.
    ///
    /// ```
    /// use event_core::vcores::{ProcKind, ProcState, Refused, VcoreLists, VcoreSet};
    /// use event_core::PcoreId;
    ///
    /// let set: VcoreSet<2> = VcoreSet::new(ProcKind::Mcp, 2, || 0);
    /// let _run = set.grant(PcoreId::new(3)).unwrap();
    /// let stops = set.destroy().unwrap();
    /// assert_eq!(stops.len(), 1); // stop the vcore on core 3
    /// assert_eq!(set.state(), ProcState::Dying);
    /// assert_eq!(set.grant(PcoreId::new(4)), Err(Refused::Dying));
    /// ```
    pub fn destroy(&self) -> Result<Vec<Stop, N>, Refused> {
        Ok(self.locked(|_| {
            self.set_state(ProcState::Dying);
            let mut stops = Vec::new();
            for v in (0..self.nr_vcores).map(VcoreId) {
                if let Some(pcore) = self.unmap(v) {
                    let _ = stops.push(Stop { vcore: v, pcore });
                }
            }
            stops
        })?)
    }
}

impl<const N: usize, L: RawLock> VcoreLists for VcoreSet<N, L> {
    fn is_mcp(&self) -> bool {
        self.kind == ProcKind::Mcp
    }

    fn state(&self) -> ProcState {
        ProcState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn num_vcores(&self) -> u32 {
        self.granted.load(Ordering::Relaxed)
    }

    fn max_vcores(&self) -> u32 {
        self.nr_vcores
    }

    fn pcore_of(&self, v: VcoreId) -> Option<PcoreId> {
        let slot = self.pcores.get(v.index())?;
        PcoreId::from_slot(slot.load(Ordering::Acquire))
    }

    fn head(&self, list: VcoreList) -> Option<VcoreId> {
        VcoreId::from_slot(self.heads[list as usize].load(Ordering::Acquire))
    }
}

impl<const N: usize, L: RawLock> ProcControl for VcoreSet<N, L> {
    #[inline]
    fn cpu_index(&self) -> usize {
        (self.cpu_index)()
    }

    fn with_lock<R>(&self, f: impl FnOnce() -> R) -> Result<R, LockHeld> {
        self.locked(|_| f())
    }

    fn wakeup(&self) -> Result<bool, LockHeld> {
        self.locked(|_| {
            let waiting = self.state() == ProcState::Waiting;
            if waiting {
                self.set_state(ProcState::Running);
            }
            waiting
        })
    }
}
