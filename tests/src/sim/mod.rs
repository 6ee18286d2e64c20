//! A simulated multicore kernel: one process, its vcores on std threads
//! (each thread is the physical core its vcore is mapped to), and the
//! kernel operations that move vcores between the online, bulk-preempted
//! and inactive lists, all keeping the host protocol of
//! `event_core::host`. [`Sim`] implements every host trait for real.

mod track;
mod vcore;

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use event_core::recv::setup::MboxKind;
use event_core::recv::{HandlerTable, Receiver, VcoreRuntime};
use event_core::testing::thread_cpu_index;
use event_core::vcores::{
    ProcControl, ProcKind, ProcState, Refused, VcoreList, VcoreLists, VcoreSet,
};
use event_core::{EventStats, PcoreId, ProcDataRef, ProcEvents, ProcOps, VcoreId};
pub use track::{Kind, Tracker};
use vcpd_abi::arena::UserArena;
use vcpd_abi::{MAX_NUM_VCORES, ProcData, UserMemory, UserMemoryExt, Vcpd, VcpdFlags};

use crate::rng::Rng;

/// "No vcore" in a pcore's owner slot.
const NO_OWNER: u32 = u32::MAX;

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

/// Per-vcore simulation state (whether it is mapped, and where, is the
/// `VcoreSet`'s business).
#[derive(Debug, Default)]
pub struct VcoreSlot {
    /// The "interrupt line": set by an IPI to its core, consumed by the
    /// vcore loop.
    pub interrupted: AtomicBool,
    /// The core it was last mapped to (a preempted vcore is restarted there).
    last_pcore: AtomicU32,
    thread: OnceLock<thread::Thread>,
}

/// Kernel-side counters of the simulation.
#[derive(Debug, Default)]
pub struct SimCounters {
    /// Successful yields.
    pub yields: AtomicU64,
    /// Yields refused because of `notif_pending`.
    pub refused_yields: AtomicU64,
    /// Vcores bulk-preempted.
    pub preemptions: AtomicU64,
    /// Vcores started from the inactive list.
    pub starts: AtomicU64,
    /// Times the process became WAITING.
    pub waits: AtomicU64,
    /// Interrupts delivered.
    pub ipis: AtomicU64,
}

/// The simulated process and its kernel: the vcore lifecycle is the
/// library's [`VcoreSet`]; the "physical cores" are a pool of ids, each
/// vcore runs on its own thread while it is mapped to one.
pub struct Sim {
    /// The process's memory (guard zones around it; freed pages unmapped).
    pub arena: UserArena,
    procdata: usize,
    /// Behaviour.
    pub cfg: Config,
    events: ProcEvents<VcoreSet>,
    /// Free physical cores.
    free_pcores: Mutex<Vec<PcoreId>>,
    /// The vcore each physical core runs ([`NO_OWNER`] if none).
    pcore_owner: Vec<AtomicU32>,
    /// Per-vcore state.
    pub vc: Vec<VcoreSlot>,
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
        write!(f, "Sim {{ {:?} }}", self.set())
    }
}

pub(crate) fn vc(v: u32) -> VcoreId {
    VcoreId::new(v).expect("vcore ids in the simulation are below MAX_NUM_VCORES")
}

impl Sim {
    /// A process with `cfg.vcores` VCPDs whose mailboxes are UCQs, tracking
    /// up to `ids` message ids, `cfg.initially_online` of them granted.
    pub fn new(cfg: Config, ids: usize) -> Arc<Self> {
        assert!(cfg.vcores as usize <= MAX_NUM_VCORES && cfg.vcores > 0);
        let arena = UserArena::new(64 << 20);
        let procdata = arena.alloc(size_of::<ProcData>(), 64).expect("procdata");
        let kind = if cfg.mcp {
            ProcKind::Mcp
        } else {
            ProcKind::Scp
        };
        let nr = if cfg.mcp { cfg.vcores } else { 1 };
        let online = if cfg.mcp {
            cfg.initially_online.min(cfg.vcores)
        } else {
            1
        };
        let events = ProcEvents::new(VcoreSet::new(kind, nr, thread_cpu_index));
        let sim = Self {
            arena,
            procdata,
            events,
            // Core ids deliberately unlike vcore ids.
            free_pcores: Mutex::new((0..nr).rev().map(|c| PcoreId::new(100 + c)).collect()),
            pcore_owner: (0..nr).map(|_| AtomicU32::new(NO_OWNER)).collect(),
            cfg,
            vc: (0..MAX_NUM_VCORES).map(|_| VcoreSlot::default()).collect(),
            counters: SimCounters::default(),
            handlers: HandlerTable::new(),
            tracker: Tracker::new(ids),
            no_yield: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        };
        track::register(&sim.handlers);
        let sim = Arc::new(sim);
        let rx = sim.receiver();
        for v in (0..nr).map(vc) {
            rx.init_vcpd_mboxes(v, MboxKind::Ucq, MboxKind::Ucq)
                .expect("VCPD mailboxes");
        }
        for _ in 0..online {
            sim.grant_one();
        }
        sim
    }

    /// The event layer's counters for this process.
    pub fn stats(&self) -> &EventStats {
        self.events.stats()
    }

    /// The library's vcore lifecycle for this process.
    pub fn set(&self) -> &VcoreSet {
        self.events.vcores()
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
        // SAFETY: the simulated process sets its queues up only through
        // event-core's `setup`, in arena memory that lives as long as the
        // `Sim`, and never frees them.
        unsafe { Receiver::new(self.procdata(), &self.handlers, self) }
    }

    /// Whether vcore `v` is mapped to a core now.
    pub fn is_mapped(&self, v: u32) -> bool {
        self.set().is_mapped(vc(v))
    }

    /// Whether the process is WAITING.
    pub fn is_waiting(&self) -> bool {
        self.set().state() == ProcState::Waiting
    }

    fn wake_thread(&self, v: VcoreId) {
        if let Some(t) = self.vc[v.index()].thread.get() {
            t.unpark();
        }
    }

    fn started(&self, v: VcoreId, pcore: PcoreId) {
        self.pcore_owner[Self::slot(pcore)].store(v.get(), Ordering::Release);
        self.vc[v.index()]
            .last_pcore
            .store(pcore.get(), Ordering::Relaxed);
        self.wake_thread(v);
    }

    fn slot(pcore: PcoreId) -> usize {
        (pcore.get() - 100) as usize
    }

    /// The kernel gives the process a free core: the `VcoreSet` starts its
    /// inactive head there. Returns the vcore started.
    pub fn grant_one(&self) -> Option<u32> {
        let pcore = self.free_pcores.lock().unwrap().pop()?;
        match self.set().grant(pcore) {
            Ok(run) => {
                self.started(run.vcore, run.pcore);
                self.counters.starts.fetch_add(1, Ordering::Relaxed);
                Some(run.vcore.get())
            }
            Err(_) => {
                self.free_pcores.lock().unwrap().push(pcore);
                None
            }
        }
    }

    /// A vcore asks for another one: the inactive head starts.
    pub fn start_inactive_head(&self) -> Option<u32> {
        if !self.cfg.mcp {
            return None;
        }
        self.grant_one()
    }

    /// The kernel's yield for vcore `v`: `VcoreSet::yield_vcore`, then the
    /// core goes back to the pool.
    pub fn sys_yield(&self, v: u32) -> Result<(), Refused> {
        match self.set().yield_vcore(&self.procdata().vcpd, vc(v)) {
            Ok(left) => {
                self.pcore_owner[Self::slot(left.pcore)].store(NO_OWNER, Ordering::Release);
                self.free_pcores.lock().unwrap().push(left.pcore);
                self.counters.yields.fetch_add(1, Ordering::Relaxed);
                if left.waiting {
                    self.counters.waits.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => {
                if e == Refused::NotifPending {
                    self.counters.refused_yields.fetch_add(1, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    /// Bulk-preempts every online vcore (each keeps its core for its
    /// restart).
    pub fn bulk_preempt(&self) {
        if !self.cfg.mcp {
            return;
        }
        if let Ok(stops) = self.set().preempt_all(&self.procdata().vcpd) {
            self.counters
                .preemptions
                .fetch_add(stops.len() as u64, Ordering::Relaxed);
        }
    }

    /// Restarts every bulk-preempted vcore on the core it left.
    pub fn restart(&self) {
        let Ok(bulk) = self.set().members(VcoreList::BulkPreempted) else {
            return;
        };
        for v in bulk {
            let pcore = PcoreId::new(self.vc[v.index()].last_pcore.load(Ordering::Relaxed));
            if let Ok(run) = self.set().restart(&self.procdata().vcpd, v, pcore) {
                self.started(run.vcore, run.pcore);
            }
        }
    }

    /// The bulk-preempted vcores now.
    pub fn bulk_preempted(&self) -> Vec<u32> {
        self.set()
            .members(VcoreList::BulkPreempted)
            .map(|b| b.iter().map(|v| v.get()).collect())
            .unwrap_or_default()
    }

    /// Whether a vcore is bulk-preempted now (a vcore that notices it must
    /// park until restarted).
    pub fn is_preempted(&self, v: u32) -> bool {
        self.vcpd(v)
            .flags(Ordering::Acquire)
            .contains(VcpdFlags::PREEMPTED)
    }

    /// Destroys the process (events are dropped from now on).
    pub fn destroy(&self) {
        let _ = self.set().destroy();
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
        if self.set().wakeup().unwrap_or(false) {
            self.make_runnable();
        }
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if self.tracker.all_delivered() {
                return true;
            }
            // A vcore may have yielded just before `no_yield` took effect.
            if self.set().head(VcoreList::Online).is_none() {
                let _ = self.set().wakeup();
                self.grant_one();
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

impl ProcOps for Sim {
    type Vcores = VcoreSet;

    fn events(&self) -> &ProcEvents<VcoreSet> {
        &self.events
    }
    fn procdata(&self) -> ProcDataRef<'_> {
        self.procdata().into()
    }
    fn alloc_user_page(&self) -> Option<usize> {
        self.arena.alloc_page()
    }
    fn ipi(&self, pcore: PcoreId) {
        let owner = self.pcore_owner[Self::slot(pcore)].load(Ordering::Acquire);
        if let Some(v) = VcoreId::new(owner) {
            // The vcore may have left the core: a spurious interrupt.
            self.vc[v.index()]
                .interrupted
                .store(true, Ordering::Release);
            self.counters.ipis.fetch_add(1, Ordering::Relaxed);
            self.wake_thread(v);
        }
    }
    fn make_runnable(&self) {
        // The scheduler gives the woken process a core.
        self.grant_one();
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
        // The process unmaps a page: the kernel credits the UCQ page budget
        // (what a kernel does when the process gives memory back).
        if self.arena.free_page(page) {
            self.stats().ucq.page_returned();
        }
    }
}
