//! A single-process mock kernel for event-core's tests and benchmark: the
//! process's memory is a guarded arena, its vcore lists are vectors under a
//! mutex (with atomic heads for unlocked peeks), and every notification,
//! interrupt and wakeup is recorded.

#![allow(dead_code)] // each test file uses a different part
#![allow(unreachable_pub)] // shared by several test crates

use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use event_core::recv::setup::{self, MboxKind};
use event_core::recv::{HandlerTable, Receiver, VcoreRuntime};
use event_core::{EventStats, ProcOps};
use ucq::{HashLocks, UcqLocks, UserPageAlloc};
use vcpd_abi::arena::UserArena;
use vcpd_abi::{
    EventMsg, EventQueueBig, EvqFlags, ProcDataN, UserMemory, UserMemoryExt, VcpdFlags,
};

pub const VCORES: usize = 4;
pub type ProcData = ProcDataN<VCORES>;
const NONE: u32 = u32::MAX;

#[derive(Default)]
pub struct Lists {
    pub online: Vec<u32>,
    pub bulk: Vec<u32>,
    pub inactive: Vec<u32>,
}

pub struct MockProc {
    pub arena: UserArena,
    pub locks: HashLocks<8>,
    pub procdata: usize,
    pub mcp: AtomicBool,
    pub dying: AtomicBool,
    pub waiting: AtomicBool,
    pub num_vcores: AtomicU32,
    pub mapped: [AtomicBool; VCORES],
    pub lists: Mutex<Lists>,
    heads: [AtomicU32; 3],
    pub ipis: Mutex<Vec<u32>>,
    /// Record each interrupt in `ipis` (benchmarks turn this off).
    pub record_ipis: AtomicBool,
    pub wakeups: AtomicUsize,
    pub stats: EventStats,
}

impl MockProc {
    /// An MCP with all vcores online and mapped, CAN_RCV_MSG set, UCQ VCPD
    /// mailboxes.
    pub fn new() -> Self {
        let arena = UserArena::new(8 << 20);
        let procdata = arena.alloc(size_of::<ProcData>(), 64).unwrap();
        let p = Self {
            arena,
            locks: HashLocks::new(),
            procdata,
            mcp: AtomicBool::new(true),
            dying: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            num_vcores: AtomicU32::new(VCORES as u32),
            mapped: std::array::from_fn(|_| AtomicBool::new(true)),
            lists: Mutex::new(Lists {
                online: (0..VCORES as u32).collect(),
                ..Lists::default()
            }),
            heads: std::array::from_fn(|_| AtomicU32::new(NONE)),
            ipis: Mutex::new(Vec::new()),
            record_ipis: AtomicBool::new(true),
            wakeups: AtomicUsize::new(0),
            stats: EventStats::new(),
        };
        p.refresh_heads();
        let handlers = HandlerTable::new();
        let rx = Receiver::new(p.pd(), &handlers, &p);
        for v in 0..VCORES as u32 {
            rx.init_vcpd_mboxes(v, MboxKind::Ucq, MboxKind::Ucq)
                .unwrap();
            p.pd().vcpd[v as usize].set_flags(VcpdFlags::CAN_RCV_MSG, Ordering::SeqCst);
        }
        p
    }

    pub fn pd(&self) -> &ProcData {
        self.arena.user_ref(self.procdata).unwrap()
    }

    pub fn refresh_heads(&self) {
        let l = self.lists.lock().unwrap();
        for (h, list) in self.heads.iter().zip([&l.online, &l.bulk, &l.inactive]) {
            h.store(list.first().copied().unwrap_or(NONE), Ordering::Release);
        }
    }

    /// Puts vcores on lists: `online`, `bulk`, `inactive`, in that order.
    pub fn set_lists(&self, online: &[u32], bulk: &[u32], inactive: &[u32]) {
        {
            let mut l = self.lists.lock().unwrap();
            l.online = online.to_vec();
            l.bulk = bulk.to_vec();
            l.inactive = inactive.to_vec();
        }
        for v in 0..VCORES {
            self.mapped[v].store(online.contains(&(v as u32)), Ordering::Relaxed);
        }
        self.refresh_heads();
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
    pub fn big_evq(&self, kind: MboxKind<'_>, flags: EvqFlags, vcore: u32) -> usize {
        let q = self.arena.alloc_zeroed::<EventQueueBig>().unwrap();
        setup::init_big_evq(q, kind, flags, vcore, self).unwrap();
        q as *const EventQueueBig as usize
    }

    /// A slim queue with no mailbox: delivery to the chosen vcore's VCPD.
    pub fn vcpd_evq(&self, flags: EvqFlags, vcore: u32) -> usize {
        let q = self.arena.alloc_zeroed::<vcpd_abi::EventQueue>().unwrap();
        setup::init_evq(q, 0, flags, vcore);
        q as *const vcpd_abi::EventQueue as usize
    }

    /// Drains a vcore's public VCPD mailbox without dispatching.
    pub fn take_public(&self, v: u32) -> Vec<EventMsg> {
        let handlers = HandlerTable::new();
        let rx = Receiver::new(self.pd(), &handlers, self);
        std::iter::from_fn(|| rx.extract_one(&self.pd().vcpd[v as usize].ev_mbox_public)).collect()
    }

    pub fn take_private(&self, v: u32) -> Vec<EventMsg> {
        let handlers = HandlerTable::new();
        let rx = Receiver::new(self.pd(), &handlers, self);
        std::iter::from_fn(|| rx.extract_one(&self.pd().vcpd[v as usize].ev_mbox_private)).collect()
    }

    pub fn notif_pending(&self, v: u32) -> bool {
        self.pd().vcpd[v as usize]
            .notif_pending
            .load(Ordering::Acquire)
    }
}

// SAFETY: forwards to the arena, which upholds the contract.
unsafe impl UserMemory for MockProc {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        self.arena.translate(addr, len)
    }
}

impl UserPageAlloc for MockProc {
    fn alloc_user_page(&self) -> Option<usize> {
        self.arena.alloc_page()
    }
}

impl UcqLocks for MockProc {
    fn with_ucq_lock<R>(&self, key: usize, f: impl FnOnce() -> R) -> R {
        self.locks.with_ucq_lock(key, f)
    }
}

impl ProcOps for MockProc {
    fn is_mcp(&self) -> bool {
        self.mcp.load(Ordering::Relaxed)
    }
    fn is_dying(&self) -> bool {
        self.dying.load(Ordering::Relaxed)
    }
    fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::Relaxed)
    }
    fn num_vcores(&self) -> u32 {
        self.num_vcores.load(Ordering::Relaxed)
    }
    fn max_vcores(&self) -> u32 {
        VCORES as u32
    }
    fn vcore_is_mapped(&self, vcoreid: u32) -> bool {
        self.mapped
            .get(vcoreid as usize)
            .is_some_and(|m| m.load(Ordering::Acquire))
    }
    fn online_head(&self) -> Option<u32> {
        Some(self.heads[0].load(Ordering::Acquire)).filter(|&h| h != NONE)
    }
    fn bulk_preempted_head(&self) -> Option<u32> {
        Some(self.heads[1].load(Ordering::Acquire)).filter(|&h| h != NONE)
    }
    fn inactive_head(&self) -> Option<u32> {
        Some(self.heads[2].load(Ordering::Acquire)).filter(|&h| h != NONE)
    }
    fn with_proc_lock<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.lists.lock().unwrap();
        f()
    }
    fn ipi_vcore(&self, vcoreid: u32) {
        if self.record_ipis.load(Ordering::Relaxed) {
            self.ipis.lock().unwrap().push(vcoreid);
        }
    }
    fn wakeup(&self) {
        self.wakeups.fetch_add(1, Ordering::Relaxed);
    }
    fn procdata_addr(&self) -> usize {
        self.procdata
    }
    fn stats(&self) -> &EventStats {
        &self.stats
    }
}

impl VcoreRuntime for MockProc {
    fn alloc_page(&self) -> Option<usize> {
        self.arena.alloc_page()
    }
    fn free_page(&self, page: usize) {
        self.arena.free_page(page);
    }
}
