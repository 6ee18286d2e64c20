//! A simulated multicore kernel: one process, its vcores on std threads
//! (each thread is the physical core its vcore is mapped to), and the
//! kernel operations that move vcores between the online, bulk-preempted
//! and inactive lists, all keeping the host protocol of
//! `event_core::host`. [`Sim`] implements every host trait for real.

mod track;
mod vcore;

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use event_core::recv::setup::MboxKind;
use event_core::recv::{HandlerTable, Receiver, VcoreRuntime};
use event_core::{EventStats, ProcOps};
pub use track::{Kind, Tracker};
use ucq::{HashLocks, UcqLocks, UserPageAlloc};
use vcpd_abi::arena::UserArena;
use vcpd_abi::sync::fence;
use vcpd_abi::{MAX_NUM_VCORES, ProcData, UserMemory, UserMemoryExt, Vcpd, VcpdFlags};

use crate::rng::Rng;

const NONE: u32 = u32::MAX;

/// How the simulated process behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Vcores (an SCP uses only vcore 0).
    pub vcores: u32,
    /// A many-core process.
    pub mcp: bool,
    /// Percent chance, per vcore loop iteration, that a vcore yields.
    pub yield_pct: u64,
    /// Percent chance, per iteration, that a running vcore asks the
    /// kernel to start another one (the head of the inactive list).
    pub request_pct: u64,
    /// Vcore 0 never yields (keeps the process running).
    pub vcore0_stays: bool,
    /// Percent chance that a handler parks (a preemption point inside a
    /// mailbox drain) when its vcore has been preempted.
    pub handler_preempt_pct: u64,
    /// Vcores that start online; the rest start inactive.
    pub initially_online: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            vcores: 4,
            mcp: true,
            yield_pct: 2,
            request_pct: 3,
            vcore0_stays: false,
            handler_preempt_pct: 50,
            initially_online: 4,
        }
    }
}

#[derive(Debug, Default)]
struct Lists {
    online: Vec<u32>,
    bulk: Vec<u32>,
    inactive: Vec<u32>,
}

/// Per-vcore simulation state.
#[derive(Debug, Default)]
pub struct VcoreSlot {
    /// Mapped to its core (online and not preempted).
    pub mapped: AtomicBool,
    /// The "interrupt line": set by `ipi_vcore`, consumed by the vcore loop.
    pub interrupted: AtomicBool,
    thread: OnceLock<thread::Thread>,
}

/// What `sys_yield` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YieldResult {
    /// The vcore gave its core up and is inactive.
    Yielded,
    /// `notif_pending` was set (before or right after unlinking): keep running.
    Refused,
    /// The vcore is not online (it was preempted meanwhile).
    NotOnline,
}

/// Kernel-side counters of the simulation.
#[derive(Debug, Default)]
pub struct SimCounters {
    /// Successful yields.
    pub yields: AtomicU64,
    /// Yields refused because of `notif_pending`.
    pub refused_yields: AtomicU64,
    /// Bulk preemptions.
    pub preemptions: AtomicU64,
    /// Vcores started from the inactive list.
    pub starts: AtomicU64,
    /// Times the process became WAITING.
    pub waits: AtomicU64,
    /// Interrupts delivered.
    pub ipis: AtomicU64,
}

/// The simulated process and its kernel.
pub struct Sim {
    /// The process's memory (guard zones around it).
    pub arena: UserArena,
    locks: HashLocks<16>,
    procdata: usize,
    /// Behaviour.
    pub cfg: Config,
    waiting: AtomicBool,
    dying: AtomicBool,
    lists: Mutex<Lists>,
    heads: [AtomicU32; 3],
    /// Per-vcore state.
    pub vc: Vec<VcoreSlot>,
    /// The event layer's counters for this process.
    pub stats: EventStats,
    /// Kernel-side counters.
    pub counters: SimCounters,
    /// The process's handlers.
    pub handlers: HandlerTable<Sim>,
    /// What was handled.
    pub tracker: Tracker,
    /// Vcores stop yielding (quiescing).
    pub no_yield: AtomicBool,
    /// Vcore threads exit.
    pub shutdown: AtomicBool,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = self.lock();
        write!(
            f,
            "Sim {{ online {:?}, bulk {:?}, inactive {:?}, waiting {} }}",
            l.online,
            l.bulk,
            l.inactive,
            self.is_waiting()
        )
    }
}

impl Sim {
    /// A process with `cfg.vcores` VCPDs whose mailboxes are UCQs, tracking
    /// up to `ids` message ids.
    pub fn new(cfg: Config, ids: usize) -> Arc<Self> {
        assert!(cfg.vcores as usize <= MAX_NUM_VCORES && cfg.vcores > 0);
        let arena = UserArena::new(64 << 20);
        let procdata = arena.alloc(size_of::<ProcData>(), 64).expect("procdata");
        let online = if cfg.mcp {
            cfg.initially_online.min(cfg.vcores)
        } else {
            1
        };
        let sim = Self {
            arena,
            locks: HashLocks::new(),
            procdata,
            lists: Mutex::new(Lists {
                online: (0..online).collect(),
                bulk: vec![],
                inactive: if cfg.mcp {
                    (online..cfg.vcores).collect()
                } else {
                    vec![]
                },
            }),
            cfg,
            waiting: AtomicBool::new(false),
            dying: AtomicBool::new(false),
            heads: std::array::from_fn(|_| AtomicU32::new(NONE)),
            vc: (0..MAX_NUM_VCORES).map(|_| VcoreSlot::default()).collect(),
            stats: EventStats::new(),
            counters: SimCounters::default(),
            handlers: HandlerTable::new(),
            tracker: Tracker::new(ids),
            no_yield: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        };
        for v in 0..online {
            sim.vc[v as usize].mapped.store(true, Ordering::Release);
        }
        sim.publish_heads(&sim.lock());
        track::register(&sim.handlers);
        let sim = Arc::new(sim);
        let rx = sim.receiver();
        for v in 0..sim.cfg.vcores {
            rx.init_vcpd_mboxes(v, MboxKind::Ucq, MboxKind::Ucq)
                .expect("VCPD mailboxes");
        }
        sim
    }

    /// The process's procdata.
    pub fn procdata(&self) -> &ProcData {
        self.arena
            .user_ref(self.procdata)
            .expect("procdata in the arena")
    }

    /// A vcore's VCPD.
    pub fn vcpd(&self, v: u32) -> &Vcpd {
        &self.procdata().vcpd[v as usize]
    }

    /// A receiver for vcore code.
    pub fn receiver(&self) -> Receiver<'_, Sim> {
        Receiver::new(self.procdata(), &self.handlers, self)
    }

    fn lock(&self) -> MutexGuard<'_, Lists> {
        self.lists.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish_heads(&self, l: &Lists) {
        for (h, list) in self.heads.iter().zip([&l.online, &l.bulk, &l.inactive]) {
            h.store(list.first().copied().unwrap_or(NONE), Ordering::Release);
        }
    }

    fn head(&self, i: usize) -> Option<u32> {
        Some(self.heads[i].load(Ordering::Acquire)).filter(|&h| h != NONE)
    }

    fn set_mapped(&self, v: u32, on: bool) {
        let slot = &self.vc[v as usize];
        slot.mapped.store(on, Ordering::Release);
        if on {
            if let Some(t) = slot.thread.get() {
                t.unpark();
            }
        }
    }

    /// Snapshot of the lists (online, bulk-preempted, inactive).
    pub fn lists(&self) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
        let l = self.lock();
        (l.online.clone(), l.bulk.clone(), l.inactive.clone())
    }

    /// The kernel's yield for vcore `v` (host protocol rule 2).
    pub fn sys_yield(&self, v: u32) -> YieldResult {
        let vcpd = self.vcpd(v);
        let mut l = self.lock();
        if !self.cfg.mcp {
            // An SCP "yields" by blocking until an event wakes it.
            if vcpd.notif_pending.load(Ordering::Acquire) {
                self.counters.refused_yields.fetch_add(1, Ordering::Relaxed);
                return YieldResult::Refused;
            }
            self.set_mapped(0, false);
            self.waiting.store(true, Ordering::Release);
            // WAITING first, then re-check: pairs with the sender's "post,
            // fence, is it WAITING?" (host rule 2).
            fence(Ordering::SeqCst);
            if vcpd.notif_pending.load(Ordering::Acquire) {
                self.waiting.store(false, Ordering::Release);
                self.set_mapped(0, true);
                self.counters.refused_yields.fetch_add(1, Ordering::Relaxed);
                return YieldResult::Refused;
            }
            self.counters.waits.fetch_add(1, Ordering::Relaxed);
            self.counters.yields.fetch_add(1, Ordering::Relaxed);
            return YieldResult::Yielded;
        }
        let Some(pos) = l.online.iter().position(|&x| x == v) else {
            return YieldResult::NotOnline;
        };
        if vcpd.notif_pending.load(Ordering::Acquire) {
            self.counters.refused_yields.fetch_add(1, Ordering::Relaxed);
            return YieldResult::Refused;
        }
        l.online.remove(pos);
        let last = l.online.is_empty() && l.bulk.is_empty();
        if last {
            self.waiting.store(true, Ordering::Release);
        }
        self.publish_heads(&l);
        // Unlinked (and WAITING if last); now re-check what a sender may
        // have posted meanwhile.
        fence(Ordering::SeqCst);
        if vcpd.notif_pending.load(Ordering::Acquire) {
            l.online.push(v);
            self.waiting.store(false, Ordering::Release);
            self.publish_heads(&l);
            self.counters.refused_yields.fetch_add(1, Ordering::Relaxed);
            return YieldResult::Refused;
        }
        self.set_mapped(v, false);
        // The vcore that yielded last is the first a wakeup starts.
        l.inactive.insert(0, v);
        if last {
            self.counters.waits.fetch_add(1, Ordering::Relaxed);
        }
        self.publish_heads(&l);
        self.counters.yields.fetch_add(1, Ordering::Relaxed);
        YieldResult::Yielded
    }

    /// Starts the inactive list's head (a vcore request, or a wakeup).
    pub fn start_inactive_head(&self) -> Option<u32> {
        let mut l = self.lock();
        self.start_head_locked(&mut l)
    }

    fn start_head_locked(&self, l: &mut Lists) -> Option<u32> {
        if !self.cfg.mcp {
            return None;
        }
        let v = (!l.inactive.is_empty()).then(|| l.inactive.remove(0))?;
        l.online.push(v);
        self.waiting.store(false, Ordering::Release);
        self.publish_heads(l);
        self.set_mapped(v, true);
        self.counters.starts.fetch_add(1, Ordering::Relaxed);
        Some(v)
    }

    /// Bulk-preempts every online vcore.
    pub fn bulk_preempt(&self) {
        let mut l = self.lock();
        let online = std::mem::take(&mut l.online);
        for &v in &online {
            self.vcpd(v)
                .set_flags(VcpdFlags::PREEMPTED, Ordering::SeqCst);
            self.set_mapped(v, false);
        }
        if !online.is_empty() {
            self.counters.preemptions.fetch_add(1, Ordering::Relaxed);
        }
        l.bulk.extend(online);
        self.publish_heads(&l);
    }

    /// Restarts every bulk-preempted vcore.
    pub fn restart(&self) {
        let mut l = self.lock();
        let bulk = std::mem::take(&mut l.bulk);
        for &v in &bulk {
            self.vcpd(v)
                .clear_flags(VcpdFlags::PREEMPTED, Ordering::SeqCst);
            l.online.push(v);
        }
        self.publish_heads(&l);
        for &v in &bulk {
            self.set_mapped(v, true);
        }
    }

    /// Whether a vcore is bulk-preempted now (a vcore that notices it must
    /// park until restarted).
    pub fn is_preempted(&self, v: u32) -> bool {
        self.vcpd(v)
            .flags(Ordering::Acquire)
            .contains(VcpdFlags::PREEMPTED)
    }

    /// The process is being destroyed (events are dropped).
    pub fn set_dying(&self, dying: bool) {
        self.dying.store(dying, Ordering::Release);
    }

    /// Starts one thread per vcore running [`vcore::run`].
    pub fn spawn_vcores(self: &Arc<Self>, rng: &mut Rng) -> Vec<JoinHandle<()>> {
        let n = if self.cfg.mcp { self.cfg.vcores } else { 1 };
        (0..n)
            .map(|v| {
                let (sim, rng) = (self.clone(), rng.fork(u64::from(v)));
                thread::Builder::new()
                    .name(format!("vcore{v}"))
                    .spawn(move || vcore::run(&sim, v, rng))
                    .expect("spawn vcore thread")
            })
            .collect()
    }

    /// Stops the vcore threads and joins them.
    pub fn stop_vcores(&self, threads: Vec<JoinHandle<()>>) {
        self.shutdown.store(true, Ordering::Release);
        for slot in &self.vc {
            if let Some(t) = slot.thread.get() {
                t.unpark();
            }
        }
        for t in threads {
            t.join().expect("a vcore thread panicked");
        }
    }

    /// Quiesces: stop yields, restart preempted vcores, wake a WAITING
    /// process, then wait (up to `limit`) until every tracked message was
    /// handled. Returns whether they all were.
    pub fn settle(&self, limit: Duration) -> bool {
        self.no_yield.store(true, Ordering::Release);
        self.restart();
        if self.is_waiting() {
            self.wakeup();
        }
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if self.tracker.all_delivered() {
                return true;
            }
            thread::sleep(Duration::from_millis(2));
        }
        self.tracker.all_delivered()
    }
}

// SAFETY: forwards to the arena, which upholds the contract.
unsafe impl UserMemory for Sim {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        self.arena.translate(addr, len)
    }
}

impl UserPageAlloc for Sim {
    fn alloc_user_page(&self) -> Option<usize> {
        self.arena.alloc_page()
    }
}

impl UcqLocks for Sim {
    fn with_ucq_lock<R>(&self, key: usize, f: impl FnOnce() -> R) -> R {
        self.locks.with_ucq_lock(key, f)
    }
}

impl ProcOps for Sim {
    fn is_mcp(&self) -> bool {
        self.cfg.mcp
    }
    fn is_dying(&self) -> bool {
        self.dying.load(Ordering::Acquire)
    }
    fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::Acquire)
    }
    fn num_vcores(&self) -> u32 {
        self.cfg.vcores
    }
    fn max_vcores(&self) -> u32 {
        self.cfg.vcores
    }
    fn vcore_is_mapped(&self, v: u32) -> bool {
        self.vc
            .get(v as usize)
            .is_some_and(|s| s.mapped.load(Ordering::Acquire))
    }
    fn online_head(&self) -> Option<u32> {
        self.head(0)
    }
    fn bulk_preempted_head(&self) -> Option<u32> {
        self.head(1)
    }
    fn inactive_head(&self) -> Option<u32> {
        self.head(2)
    }
    fn with_proc_lock<R>(&self, f: impl FnOnce() -> R) -> R {
        let _l = self.lock();
        f()
    }
    fn ipi_vcore(&self, v: u32) {
        if let Some(slot) = self.vc.get(v as usize) {
            slot.interrupted.store(true, Ordering::Release);
            self.counters.ipis.fetch_add(1, Ordering::Relaxed);
            if let Some(t) = slot.thread.get() {
                t.unpark();
            }
        }
    }
    fn wakeup(&self) {
        let mut l = self.lock();
        if !self.waiting.load(Ordering::Acquire) {
            return;
        }
        if self.cfg.mcp {
            self.start_head_locked(&mut l);
        } else {
            self.waiting.store(false, Ordering::Release);
            self.set_mapped(0, true);
        }
    }
    fn procdata_addr(&self) -> usize {
        self.procdata
    }
    fn stats(&self) -> &EventStats {
        &self.stats
    }
}

impl VcoreRuntime for Sim {
    fn relax(&self) {
        thread::yield_now();
    }
    fn alloc_page(&self) -> Option<usize> {
        self.arena.alloc_page()
    }
    fn free_page(&self, page: usize) {
        self.arena.free_page(page);
    }
}
