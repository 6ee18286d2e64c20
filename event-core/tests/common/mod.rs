//! A single-process mock kernel for event-core's tests and benchmark: the
//! process's memory is a guarded arena, its vcores are the library's
//! `VcoreSet` (wrapped so a test can make the host misbehave), and every
//! interrupt and wakeup is recorded.

#![allow(dead_code)] // each test file uses a different part
#![allow(unreachable_pub)] // shared by several test crates

use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use event_core::recv::setup::{self, MboxKind};
use event_core::recv::{HandlerTable, Receiver, VcoreRuntime};
use event_core::testing::thread_cpu_index;
use event_core::vcores::{
    LockHeld, ProcControl, ProcKind, ProcState, VcoreList, VcoreLists, VcoreSet,
};
use event_core::{PcoreId, ProcDataRef, ProcEvents, ProcOps, VcoreId};
use vcpd_abi::arena::UserArena;
use vcpd_abi::{
    EventMsg, EventQueue, EventQueueBig, EvqFlags, ProcDataN, UserAddr, UserMemory, UserMemoryExt,
    VcpdFlags,
};

pub const VCORES: usize = 4;
pub type ProcData = ProcDataN<VCORES>;

pub fn vc(v: u32) -> VcoreId {
    VcoreId::new(v).unwrap()
}

/// Vcore `v` runs on pcore `v` in the mock (so recorded IPIs name vcores).
pub fn pc(v: VcoreId) -> PcoreId {
    PcoreId::new(v.get())
}

/// The library's `VcoreSet`, with switches that make the host lie.
pub struct MockVcores {
    pub set: VcoreSet<VCORES>,
    /// Every list looks empty (a host that broke the list invariant).
    pub hide_heads: AtomicBool,
}

impl VcoreLists for MockVcores {
    fn is_mcp(&self) -> bool {
        self.set.is_mcp()
    }
    fn state(&self) -> ProcState {
        self.set.state()
    }
    fn num_vcores(&self) -> u32 {
        self.set.num_vcores()
    }
    fn max_vcores(&self) -> u32 {
        self.set.max_vcores()
    }
    fn pcore_of(&self, v: VcoreId) -> Option<PcoreId> {
        self.set.pcore_of(v)
    }
    fn head(&self, list: VcoreList) -> Option<VcoreId> {
        if self.hide_heads.load(Ordering::Relaxed) {
            return None;
        }
        self.set.head(list)
    }
}

impl ProcControl for MockVcores {
    fn cpu_index(&self) -> usize {
        self.set.cpu_index()
    }
    fn with_lock<R>(&self, f: impl FnOnce() -> R) -> Result<R, LockHeld> {
        self.set.with_lock(f)
    }
    fn wakeup(&self) -> Result<bool, LockHeld> {
        self.set.wakeup()
    }
}

pub struct MockProc {
    pub arena: UserArena,
    pub procdata: usize,
    /// Procdata, checked once at creation (as a kernel keeps it).
    pd: NonNull<ProcData>,
    pub events: ProcEvents<MockVcores>,
    /// Pcores interrupted, in order.
    pub ipis: Mutex<Vec<u32>>,
    /// Record each interrupt in `ipis` (benchmarks turn this off).
    pub record_ipis: AtomicBool,
    /// `make_runnable` calls.
    pub runnable: AtomicUsize,
}

impl MockProc {
    /// An MCP with every vcore online (vcore v on pcore v), CAN_RCV_MSG
    /// set, UCQ VCPD mailboxes.
    pub fn new() -> Self {
        Self::with_kind(ProcKind::Mcp)
    }

    /// An SCP with vcore 0 running.
    pub fn scp() -> Self {
        Self::with_kind(ProcKind::Scp)
    }

    fn with_kind(kind: ProcKind) -> Self {
        let arena = UserArena::new(8 << 20);
        let procdata = arena.alloc(size_of::<ProcData>(), 64).unwrap();
        let pd = NonNull::from(arena.user_ref::<ProcData>(procdata).unwrap());
        let p = Self {
            arena,
            procdata,
            pd,
            events: ProcEvents::new(MockVcores {
                set: VcoreSet::new(kind, VCORES as u32, thread_cpu_index),
                hide_heads: AtomicBool::new(false),
            }),
            ipis: Mutex::new(Vec::new()),
            record_ipis: AtomicBool::new(true),
            runnable: AtomicUsize::new(0),
        };
        let handlers = HandlerTable::new();
        let rx = p.receiver(&handlers);
        let n = if kind == ProcKind::Mcp {
            VCORES as u32
        } else {
            1
        };
        for v in (0..n).map(vc) {
            rx.init_vcpd_mboxes(v, MboxKind::Ucq, MboxKind::Ucq)
                .unwrap();
            p.set_can_rcv(v.get(), true);
            let head = p.set().head(VcoreList::Inactive).unwrap_or(v);
            let _ = p.set().grant(pc(head)).unwrap();
        }
        p
    }

    pub fn pd(&self) -> &ProcData {
        // SAFETY: `pd` was checked against the arena, which owns the memory
        // for as long as `self` lives; `ProcData` is `SharedMem`.
        unsafe { self.pd.as_ref() }
    }

    pub fn set(&self) -> &VcoreSet<VCORES> {
        &self.events.vcores().set
    }

    pub fn receiver<'a>(&'a self, handlers: &'a HandlerTable<MockProc>) -> Receiver<'a, MockProc> {
        // SAFETY: the mock process sets its queues up only through
        // `setup` in arena memory that lives as long as the mock.
        unsafe { Receiver::new(self.pd(), handlers, self) }
    }

    /// Puts the vcores on the lists, in these orders, by running the
    /// set's own transitions: everything back online, all yielded (in
    /// reverse), granted in order, then the bulk ones preempted and the
    /// inactive ones yielded. `notif_pending` ends clear everywhere. A
    /// process left with no vcore online or preempted is WAITING.
    pub fn arrange(&self, online: &[u32], bulk: &[u32], inactive: &[u32]) {
        let set = self.set();
        let vcpds = &self.pd().vcpd;
        for v in set.members(VcoreList::BulkPreempted).unwrap() {
            let _ = set.restart(vcpds, v, pc(v)).unwrap();
        }
        while let Some(v) = set.head(VcoreList::Inactive) {
            let _ = set.grant(pc(v)).unwrap();
        }
        let order: Vec<u32> = online.iter().chain(bulk).chain(inactive).copied().collect();
        assert_eq!(order.len(), VCORES, "arrange every vcore once");
        for &v in order.iter().rev() {
            self.yield_now(v);
        }
        for &v in &order {
            assert_eq!(set.head(VcoreList::Inactive), Some(vc(v)));
            let _ = set.grant(pc(vc(v))).unwrap();
        }
        for &v in bulk {
            let _ = set.preempt(vcpds, vc(v)).unwrap();
        }
        for &v in inactive.iter().rev() {
            self.yield_now(v);
        }
        for v in 0..VCORES {
            self.pd().vcpd[v]
                .notif_pending
                .store(false, Ordering::Relaxed);
        }
    }

    /// Vcore `v` yields (its `notif_pending` cleared first).
    pub fn yield_now(&self, v: u32) {
        self.pd().vcpd[v as usize]
            .notif_pending
            .store(false, Ordering::Relaxed);
        let _ = self.set().yield_vcore(&self.pd().vcpd, vc(v)).unwrap();
    }

    pub fn set_can_rcv(&self, v: u32, on: bool) {
        let vcpd = &self.pd().vcpd[v as usize];
        if on {
            vcpd.set_flags(VcpdFlags::CAN_RCV_MSG, Ordering::SeqCst);
        } else {
            vcpd.clear_flags(VcpdFlags::CAN_RCV_MSG, Ordering::SeqCst);
        }
    }

    /// A big event queue in the process with a mailbox of `kind`.
    pub fn big_evq(&self, kind: MboxKind<'_>, flags: EvqFlags, vcore: u32) -> UserAddr<EventQueue> {
        let q = self.arena.alloc_zeroed::<EventQueueBig>().unwrap();
        setup::init_big_evq(q, kind, flags, vc(vcore), self).unwrap();
        UserAddr::new((q as *const EventQueueBig).addr())
    }

    /// A slim queue with no mailbox: delivery to the chosen vcore's VCPD.
    pub fn vcpd_evq(&self, flags: EvqFlags, vcore: u32) -> UserAddr<EventQueue> {
        let q = self.arena.alloc_zeroed::<EventQueue>().unwrap();
        match VcoreId::new(vcore) {
            // Refused only for an all-zero queue, which a test may want.
            Some(v) => setup::init_evq(q, UserAddr::NULL, flags, v).unwrap_or(()),
            // Out of range on purpose: write it as a process would.
            None => {
                setup::init_evq(q, UserAddr::NULL, flags, vc(1)).unwrap();
                q.ev_vcore.store(vcore, Ordering::Relaxed);
            }
        }
        UserAddr::new((q as *const EventQueue).addr())
    }

    /// The queue at `q`.
    pub fn evq(&self, q: UserAddr<EventQueue>) -> &EventQueue {
        q.check(&self.arena).unwrap()
    }

    /// Drains a vcore's public VCPD mailbox without dispatching.
    pub fn take_public(&self, v: u32) -> Vec<EventMsg> {
        let handlers = HandlerTable::new();
        let rx = self.receiver(&handlers);
        std::iter::from_fn(|| rx.extract_one(&self.pd().vcpd[v as usize].ev_mbox_public)).collect()
    }

    pub fn take_private(&self, v: u32) -> Vec<EventMsg> {
        let handlers = HandlerTable::new();
        let rx = self.receiver(&handlers);
        std::iter::from_fn(|| rx.extract_one(&self.pd().vcpd[v as usize].ev_mbox_private)).collect()
    }

    pub fn notif_pending(&self, v: u32) -> bool {
        self.pd().vcpd[v as usize]
            .notif_pending
            .load(Ordering::Acquire)
    }

    pub fn stats(&self) -> &event_core::EventStats {
        self.events.stats()
    }
}

// SAFETY: `pd` points into the arena, whose memory is only ever accessed
// through atomics; everything else in the mock is `Sync` already.
unsafe impl Sync for MockProc {}
// SAFETY: as for `Sync`; nothing is tied to a thread.
unsafe impl Send for MockProc {}

// SAFETY: forwards to the arena, which upholds the contract.
unsafe impl UserMemory for MockProc {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        self.arena.translate(addr, len)
    }
}

impl ProcOps for MockProc {
    type Vcores = MockVcores;

    fn events(&self) -> &ProcEvents<MockVcores> {
        &self.events
    }
    fn procdata(&self) -> ProcDataRef<'_> {
        self.pd().into()
    }
    fn alloc_user_page(&self) -> Option<usize> {
        self.arena.alloc_page()
    }
    fn ipi(&self, pcore: PcoreId) {
        if self.record_ipis.load(Ordering::Relaxed) {
            self.ipis.lock().unwrap().push(pcore.get());
        }
    }
    fn make_runnable(&self) {
        self.runnable.fetch_add(1, Ordering::Relaxed);
    }
}

impl VcoreRuntime for MockProc {
    fn alloc_page(&self) -> Option<usize> {
        self.arena.alloc_page()
    }
    fn free_page(&self, page: usize) {
        self.arena.free_page(page);
        // The kernel sees the page come back (an unmap): it no longer counts
        // against the process's UCQ page budget.
        self.events.stats().ucq.page_returned();
    }
}

/// The producer host a bare `ucq::send` needs (the benchmark's baseline):
/// the mock's memory and pages, and a lock table of its own.
pub struct BareUcqHost<'a> {
    proc: &'a MockProc,
    locks: ucq::HashLocks<8>,
}

impl MockProc {
    pub fn ucq_host(&self) -> BareUcqHost<'_> {
        BareUcqHost {
            proc: self,
            locks: ucq::HashLocks::new(),
        }
    }
}

// SAFETY: forwards to the arena, which upholds the contract.
unsafe impl UserMemory for BareUcqHost<'_> {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        self.proc.arena.translate(addr, len)
    }
}

impl ucq::UserPageAlloc for BareUcqHost<'_> {
    fn alloc_user_page(&self) -> Option<usize> {
        self.proc.arena.alloc_page()
    }
    /// The benchmark's process half does not report returned pages; the
    /// arena's size bounds it instead (as `ucq::ArenaHost` does).
    fn ucq_page_budget(&self) -> u64 {
        u64::MAX
    }
}

impl ucq::UcqLocks for BareUcqHost<'_> {
    fn with_ucq_lock<R>(&self, key: usize, f: impl FnOnce() -> R) -> R {
        self.locks.with_ucq_lock(key, f)
    }
}
