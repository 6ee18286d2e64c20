//! The process model: what the kernel knows about a process, and the
//! operations that change it (start, yield, preempt, restart, wake, kill).
//!
//! A [`Process`] owns an address space (a range of the user region,
//! uspace.rs) holding its procdata: the ABI's `vcpd_abi::ProcData` (the
//! kernel-event table and 64 VCPDs), shared with the process. The kernel
//! side keeps, in kernel memory:
//!
//! - the **state**: `RUNNING_S/RUNNABLE_S` (an SCP), `RUNNING_M/RUNNABLE_M`
//!   (an MCP), `WAITING` (every vcore yielded), `DYING`;
//! - for an MCP, the three ordered **vcore lists** `online`,
//!   `bulk_preempted`, `inactive`, each a `heapless::Vec` under one
//!   `spin::Mutex`, *the process lock*; plus a copy of each list's head in
//!   an atomic, refreshed under the lock right after every change, for the
//!   unlocked peeks the send path makes;
//! - per vcore, whether it is **mapped** (running on, or about to run on, a
//!   physical core) and **which core**: atomics, written under the lock.
//!
//! # How the host protocol of `event_core::host` is kept
//!
//! 1. *Lists.* Every vcore of an MCP is on exactly one list from creation
//!    on (all start inactive); every change moves a vcore between lists in
//!    one locked section, and [`Process::locked`] re-checks the invariant
//!    (and `mapped` == "on the online list") after each one.
//! 2. *Yield.* [`Process::sys_yield`] refuses while `notif_pending` is set;
//!    otherwise it takes the vcore off the online list *and unmaps it*,
//!    publishes the new head, fences (`SeqCst`) and reads `notif_pending`
//!    again, putting everything back if a sender got in. A sender posts,
//!    sets `notif_pending`, fences, then reads the list head or `mapped`:
//!    one of the two sees the other's write.
//! 3. *Coming online.* The vcore's own code (vcore.rs) runs
//!    `vcore_online` (sets `CAN_RCV_MSG`, drains its mailboxes) first
//!    thing when started, and again when it is restarted after a
//!    preemption; restart also sets its `notif_pending`.
//! 4. *Inactive head first.* [`Process::grant`] (used by wakeup and by the
//!    scheduler) always starts the inactive list's head; a yielding vcore
//!    goes to the head of the inactive list, as in Akaros.
//! 5. *Stable under the lock.* Lists, heads, `mapped` and the state change
//!    only inside [`Process::locked`], which is also what
//!    `ProcOps::with_proc_lock` takes (proc_ops.rs). The lock is always
//!    taken with interrupts off, so an interrupt handler that takes it
//!    (the scheduler's tick) never spins on its own CPU's holder, and a
//!    holder is never parked by a preemption.
//! 6. *Spurious IPIs.* `ipi_vcore` interrupts the core the vcore was last
//!    mapped to; the handler only sets a flag (sched.rs), so a stale
//!    target costs a wasted wake-up.
//!
//! Preemption here is *bulk* preemption of some or all vcores: they move
//! online → bulk_preempted (keeping `CAN_RCV_MSG`: they will check their
//! mailboxes when restarted), `VC_PREEMPTED` is set in their VCPD so the
//! process's other vcores know to drain their public mailboxes, and their
//! cores park in the preemption IPI's handler until [`Process::restart_due`]
//! puts them back. With no vcore online the process is `RUNNABLE_M`.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering, fence};

use event_core::EventStats;
use event_core::recv::{HandlerTable, Receiver};
use heapless::Vec;
use spin::{Mutex, Once, RwLock};
use ucq::HashLocks;
use vcpd_abi::procdata::vcpd_offset;
use vcpd_abi::{ProcData, UserMemoryExt, Vcpd, VcpdFlags};
use x86_64::instructions::interrupts;

use crate::runtime::Runtime;
use crate::sched;
use crate::uspace::UserSpace;
use crate::vcore::{self, VcoreProgram};

/// The most vcores a process has here: one per application processor.
pub const MAX_VCORES: usize = crate::percpu::MAX_CPUS - 1;
/// The most processes the demo creates.
pub const MAX_PROCS: usize = 3;
/// "No vcore" in the atomic head caches and "no core" in a vcore's slot.
pub const NONE: u32 = u32::MAX;

/// A receiver over a process's procdata: what its vcore code uses.
pub type Rx = Receiver<'static, Runtime>;
/// The receiver type handlers get (any lifetime: `HandlerFn` is generic).
pub type Recv<'a> = Receiver<'a, Runtime>;

/// Process states that event delivery cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ProcState {
    /// SCP, not running (runnable).
    RunnableS = 0,
    /// SCP running on a core.
    RunningS = 1,
    /// MCP with no vcore online, waiting for cores (bulk preempted).
    RunnableM = 2,
    /// MCP with vcores online.
    RunningM = 3,
    /// Every vcore yielded: waiting for an event (WAKEUP) to run again.
    Waiting = 4,
    /// Being destroyed: events are dropped, vcores stop.
    Dying = 5,
}

impl ProcState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::RunnableS,
            1 => Self::RunningS,
            2 => Self::RunnableM,
            3 => Self::RunningM,
            4 => Self::Waiting,
            _ => Self::Dying,
        }
    }
}

/// What code a process's vcores run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The receive half of event-core (vcore.rs).
    Cooperative,
    /// Code that scribbles over its own shared memory and never receives
    /// (the hostile-process scenario).
    Hostile,
}

/// The kernel's per-vcore record.
#[derive(Debug)]
struct VcoreSlot {
    /// Running on (or about to run on) a core: the send path's unlocked peek.
    mapped: AtomicBool,
    /// The core it is (or was last) mapped to, [`NONE`] if none.
    pcore: AtomicU32,
    /// Scheduler tick at which a bulk-preempted vcore is due back.
    restart_tick: AtomicU64,
}

impl VcoreSlot {
    const fn new() -> Self {
        Self {
            mapped: AtomicBool::new(false),
            pcore: AtomicU32::new(NONE),
            restart_tick: AtomicU64::new(0),
        }
    }
}

/// The three vcore lists of an MCP, in order (index 0 is the head).
#[derive(Debug, Default)]
pub struct Lists {
    /// Mapped vcores.
    pub online: Vec<u32, MAX_VCORES>,
    /// Preempted vcores that will be restarted.
    pub bulk_preempted: Vec<u32, MAX_VCORES>,
    /// Yielded (or never started) vcores; the head is started first.
    pub inactive: Vec<u32, MAX_VCORES>,
}

/// The three vcore lists of an MCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcoreList {
    /// Mapped vcores.
    Online = 0,
    /// Preempted vcores that will be restarted.
    BulkPreempted = 1,
    /// Yielded or never started vcores.
    Inactive = 2,
}

/// Why the kernel refused a yield.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YieldRefused {
    /// A message arrived (`notif_pending`): the vcore must handle it first.
    NotifPending,
    /// The vcore is not online: it is being preempted, and its core will
    /// stop in the preemption IPI's handler in a moment.
    NotOnline,
    /// The process is dying.
    Dying,
}

/// Counters of the process model (the event counters are in
/// [`EventStats`]).
#[derive(Debug, Default)]
pub struct Counters {
    /// Successful yields.
    pub yields: AtomicU64,
    /// Yields refused because `notif_pending` was set.
    pub yields_refused: AtomicU64,
    /// Vcores bulk-preempted.
    pub preemptions: AtomicU64,
    /// Bulk-preempted vcores restarted.
    pub restarts: AtomicU64,
    /// Vcores started from the inactive list.
    pub starts: AtomicU64,
    /// WAITING → runnable transitions through `ProcOps::wakeup`.
    pub wakeups: AtomicU64,
    /// Transitions into WAITING (the last vcore yielded).
    pub waits: AtomicU64,
    /// Messages a vcore handled out of another, preempted vcore's public
    /// mailbox.
    pub recovered: AtomicU64,
}

/// How to build a process.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Name for the console.
    pub name: &'static str,
    /// Which code its vcores run.
    pub kind: Kind,
    /// An MCP (else an SCP, vcore 0 only).
    pub mcp: bool,
    /// Vcores (at most [`MAX_VCORES`]; an SCP uses only vcore 0).
    pub vcores: u32,
    /// Size of its address space in pages.
    pub pages: usize,
    /// Reserve a guard page on each side of the address space
    /// ([`UserSpace::new_guarded`]).
    pub guarded: bool,
}

/// A process.
pub struct Process {
    id: usize,
    name: &'static str,
    kind: Kind,
    mcp: bool,
    nr_vcores: u32,
    space: UserSpace,
    /// The pages just outside its space (0 if none were reserved).
    guards: [usize; 2],
    /// User address of its procdata (`vcpd_abi::ProcData`), chosen by the
    /// kernel at creation: the process cannot move it.
    procdata: usize,
    state: AtomicU8,
    lists: Mutex<Lists>,
    /// Heads of online, bulk_preempted, inactive, indexed by [`VcoreList`]
    /// ([`NONE`] when empty).
    heads: [AtomicU32; 3],
    vcores: [VcoreSlot; MAX_VCORES],
    /// The UCQ producers' page-switch locks (kernel memory, ucq docs).
    pub(crate) ucq_locks: HashLocks<8>,
    stats: EventStats,
    handlers: HandlerTable<Runtime>,
    rt: Runtime,
    program: RwLock<&'static dyn VcoreProgram>,
    /// Set to make every vcore yield (the end of a scenario).
    finish: AtomicBool,
    /// Process-model counters.
    pub counters: Counters,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

static PROCESSES: [Once<Process>; MAX_PROCS] = [const { Once::new() }; MAX_PROCS];

/// Creates process `pid` (once; later calls return the same process), sets
/// its VCPD mailboxes up as UCQs (what a process's runtime does before its
/// vcores first run), with every vcore inactive and the process WAITING
/// for cores.
///
/// # Panics
/// If `pid` is not below [`MAX_PROCS`], the spec asks for more than
/// [`MAX_VCORES`], or memory runs out.
pub fn create(pid: usize, spec: Spec) -> &'static Process {
    assert!(spec.vcores as usize <= MAX_VCORES && spec.vcores > 0);
    let mut fresh = false;
    let p = PROCESSES[pid].call_once(|| {
        fresh = true;
        Process::new(pid, spec)
    });
    if fresh {
        let rx = p.receiver();
        for v in 0..p.nr_vcores {
            use event_core::recv::setup::MboxKind;
            rx.init_vcpd_mboxes(v, MboxKind::Ucq, MboxKind::Ucq)
                .unwrap_or_else(|e| panic!("{}: VCPD mailboxes of vcore {v}: {e}", p.name));
        }
    }
    p
}

/// Process `pid`.
///
/// # Panics
/// If it was not created.
pub fn get(pid: usize) -> &'static Process {
    PROCESSES[pid]
        .get()
        .unwrap_or_else(|| panic!("process {pid} does not exist"))
}

/// Every process created so far.
pub fn all() -> impl Iterator<Item = &'static Process> {
    PROCESSES.iter().filter_map(Once::get)
}

impl Process {
    fn new(id: usize, spec: Spec) -> Self {
        let (space, guards) = UserSpace::new_guarded(spec.pages, spec.guarded);
        let pd_pages = size_of::<ProcData>().div_ceil(crate::user_region::PAGE_SIZE);
        let procdata = space
            .alloc_pages(pd_pages)
            .expect("a fresh address space has room for procdata");
        let nr_vcores = if spec.mcp { spec.vcores } else { 1 };
        let mut lists = Lists::default();
        if spec.mcp {
            for v in 0..nr_vcores {
                lists.inactive.push(v).expect("at most MAX_VCORES");
            }
        }
        let p = Self {
            id,
            name: spec.name,
            kind: spec.kind,
            mcp: spec.mcp,
            nr_vcores,
            space,
            guards,
            procdata,
            state: AtomicU8::new(ProcState::Waiting as u8),
            lists: Mutex::new(Lists::default()),
            heads: [const { AtomicU32::new(NONE) }; 3],
            vcores: [const { VcoreSlot::new() }; MAX_VCORES],
            ucq_locks: HashLocks::new(),
            stats: EventStats::new(),
            handlers: HandlerTable::new(),
            rt: Runtime::new(id),
            program: RwLock::new(&vcore::IDLE),
            finish: AtomicBool::new(false),
            counters: Counters::default(),
        };
        *p.lists.lock() = lists;
        p.publish_heads(&p.lists.lock());
        p
    }

    /// The process id (index in the process table).
    pub fn id(&self) -> usize {
        self.id
    }

    /// The name for the console.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Which code its vcores run.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// An MCP (many vcores) rather than an SCP.
    pub fn is_mcp(&self) -> bool {
        self.mcp
    }

    /// Its number of vcores (the bound of every vcore id).
    pub fn nr_vcores(&self) -> u32 {
        self.nr_vcores
    }

    /// Its address space.
    pub fn space(&self) -> &UserSpace {
        &self.space
    }

    /// The guard pages just below and above its space (0 if none).
    pub fn guard_pages(&self) -> [usize; 2] {
        self.guards
    }

    /// User address of its procdata.
    pub fn procdata_addr(&self) -> usize {
        self.procdata
    }

    /// Its procdata, as the process sees it.
    pub fn procdata(&'static self) -> &'static ProcData {
        self.user_ref::<ProcData>(self.procdata)
            .expect("procdata lies in the process's own space")
    }

    /// Its event counters.
    pub fn stats(&self) -> &EventStats {
        &self.stats
    }

    /// Its handler table (process memory in spirit: only its vcores use it).
    pub fn handlers(&self) -> &HandlerTable<Runtime> {
        &self.handlers
    }

    /// Its runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// A receiver for its vcore code.
    pub fn receiver(&'static self) -> Rx {
        Receiver::new(self.procdata(), &self.handlers, &self.rt)
    }

    /// The current state.
    pub fn state(&self) -> ProcState {
        ProcState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set_state(&self, s: ProcState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// The program its vcores run now.
    pub fn program(&self) -> &'static dyn VcoreProgram {
        // Interrupts off: a vcore must not be parked by a preemption while
        // it holds the read lock (the kernel CPU may be waiting to write).
        interrupts::without_interrupts(|| *self.program.read())
    }

    /// Installs the program its vcores run (between scenarios).
    pub fn set_program(&self, program: &'static dyn VcoreProgram) {
        interrupts::without_interrupts(|| *self.program.write() = program);
    }

    /// Whether the vcores were told to yield for good.
    pub fn finishing(&self) -> bool {
        self.finish.load(Ordering::Acquire)
    }

    /// Tells every vcore to yield (`true`) or to keep running (`false`).
    pub fn set_finish(&self, finish: bool) {
        self.finish.store(finish, Ordering::Release);
    }

    /// Whether the vcore is mapped (unlocked peek).
    pub fn vcore_mapped(&self, v: u32) -> bool {
        self.slot(v)
            .is_some_and(|s| s.mapped.load(Ordering::Acquire))
    }

    /// The core vcore `v` is (or was last) mapped to.
    pub fn vcore_pcore(&self, v: u32) -> Option<usize> {
        match self.slot(v)?.pcore.load(Ordering::Acquire) {
            NONE => None,
            c => Some(c as usize),
        }
    }

    /// Bit `v` set for each mapped vcore (a snapshot).
    pub fn mapped_mask(&self) -> u64 {
        (0..self.nr_vcores)
            .filter(|&v| self.vcore_mapped(v))
            .fold(0, |m, v| m | 1 << v)
    }

    /// Head of `list` (an unlocked peek; an SCP has no lists).
    pub fn head(&self, list: VcoreList) -> Option<u32> {
        if !self.mcp {
            return None;
        }
        match self.heads[list as usize].load(Ordering::Acquire) {
            NONE => None,
            v => Some(v),
        }
    }

    fn slot(&self, v: u32) -> Option<&VcoreSlot> {
        (v < self.nr_vcores)
            .then(|| self.vcores.get(v as usize))
            .flatten()
    }

    /// The kernel's checked view of vcore `v`'s VCPD.
    pub fn vcpd(&self, v: u32) -> Option<&Vcpd> {
        if v >= self.nr_vcores {
            return None;
        }
        self.user_ref::<Vcpd>(self.procdata + vcpd_offset(v as usize))
    }

    /// Runs `f` under the process lock, with interrupts off (rule 5), then
    /// republishes the list heads and re-checks the list invariants.
    ///
    /// # Panics
    /// If `f` broke an invariant (a bug in this file).
    pub fn locked<R>(&self, f: impl FnOnce(&mut Lists) -> R) -> R {
        interrupts::without_interrupts(|| {
            let mut lists = self.lists.lock();
            let r = f(&mut lists);
            self.publish_heads(&lists);
            self.check_invariants(&lists);
            r
        })
    }

    /// Takes the process lock without touching the lists (what
    /// `ProcOps::with_proc_lock` needs: the send path only peeks).
    pub(crate) fn with_lock<R>(&self, f: impl FnOnce() -> R) -> R {
        interrupts::without_interrupts(|| {
            let _guard = self.lists.lock();
            f()
        })
    }

    fn publish_heads(&self, l: &Lists) {
        for (h, list) in self
            .heads
            .iter()
            .zip([&l.online, &l.bulk_preempted, &l.inactive])
        {
            h.store(list.first().copied().unwrap_or(NONE), Ordering::Release);
        }
    }

    fn check_invariants(&self, l: &Lists) {
        if !self.mcp || self.state() == ProcState::Dying {
            return;
        }
        for v in 0..self.nr_vcores {
            let n = [&l.online, &l.bulk_preempted, &l.inactive]
                .iter()
                .map(|list| list.iter().filter(|&&x| x == v).count())
                .sum::<usize>();
            assert_eq!(n, 1, "{}: vcore {v} is on {n} lists", self.name);
            assert_eq!(
                self.vcore_mapped(v),
                l.online.contains(&v),
                "{}: vcore {v}: mapped disagrees with the online list",
                self.name
            );
        }
    }

    /// The kernel's half of a yield, called by vcore `v` (after its
    /// `prepare_to_yield`). On success the vcore is inactive and its core
    /// is free; the caller must stop running vcore code.
    pub fn sys_yield(&self, v: u32) -> Result<(), YieldRefused> {
        let vcpd = self.vcpd(v).ok_or(YieldRefused::NotOnline)?;
        let slot = self.slot(v).ok_or(YieldRefused::NotOnline)?;
        let pending = || vcpd.notif_pending.load(Ordering::Acquire);
        let r = self.locked(|l| {
            if self.state() == ProcState::Dying {
                return Err(YieldRefused::Dying);
            }
            if pending() {
                return Err(YieldRefused::NotifPending);
            }
            if self.mcp {
                let pos = l
                    .online
                    .iter()
                    .position(|&x| x == v)
                    .ok_or(YieldRefused::NotOnline)?;
                // Rule 2: off the list and unmapped, WAITING if it was the
                // last one, published, fence, and look at `notif_pending`
                // again. A sender that checked the head, `mapped` or the
                // state before this saw the vcore (or no WAITING) and set
                // `notif_pending` first, which the second read sees.
                let before = self.state();
                l.online.remove(pos);
                slot.mapped.store(false, Ordering::Release);
                let last = l.online.is_empty();
                if last {
                    self.set_state(if l.bulk_preempted.is_empty() {
                        ProcState::Waiting
                    } else {
                        // Preempted vcores will come back: not WAITING.
                        ProcState::RunnableM
                    });
                }
                self.publish_heads(l);
                fence(Ordering::SeqCst);
                if pending() {
                    l.online.insert(pos, v).expect("it was just there");
                    slot.mapped.store(true, Ordering::Release);
                    self.set_state(before);
                    return Err(YieldRefused::NotifPending);
                }
                // Akaros puts a yielded vcore at the head of the inactive
                // list: it is the first to come back.
                l.inactive.insert(0, v).expect("MAX_VCORES capacity");
                if last && self.state() == ProcState::Waiting {
                    self.counters.waits.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                if !slot.mapped.load(Ordering::Relaxed) {
                    return Err(YieldRefused::NotOnline);
                }
                // The SCP's version of rule 2: WAITING and unmapped, fence,
                // re-check. (A sender sets `notif_pending`, then reads the
                // state in `is_waiting`, which fences first: proc_ops.rs.)
                self.set_state(ProcState::Waiting);
                slot.mapped.store(false, Ordering::Release);
                fence(Ordering::SeqCst);
                if pending() {
                    self.set_state(ProcState::RunningS);
                    slot.mapped.store(true, Ordering::Release);
                    return Err(YieldRefused::NotifPending);
                }
                self.counters.waits.fetch_add(1, Ordering::Relaxed);
            }
            let pcore = slot.pcore.swap(NONE, Ordering::AcqRel);
            sched::release_pcore(pcore, self.id, v);
            Ok(())
        });
        match r {
            Ok(()) => self.counters.yields.fetch_add(1, Ordering::Relaxed),
            Err(YieldRefused::NotifPending) => {
                self.counters.yields_refused.fetch_add(1, Ordering::Relaxed)
            }
            Err(_) => 0,
        };
        r
    }

    /// Starts up to `max` vcores from the head of the inactive list (rule
    /// 4) on free cores, and wakes those cores. Returns how many started.
    pub fn grant(&self, max: usize) -> usize {
        let mut woken: Vec<usize, MAX_VCORES> = Vec::new();
        self.locked(|l| {
            match self.state() {
                ProcState::Dying => return,
                _ if !self.mcp => {
                    let slot = &self.vcores[0];
                    if max > 0 && !slot.mapped.load(Ordering::Relaxed) {
                        if let Some(c) = sched::claim_pcore(self.id, 0) {
                            slot.pcore.store(c as u32, Ordering::Release);
                            slot.mapped.store(true, Ordering::Release);
                            self.set_state(ProcState::RunningS);
                            let _ = woken.push(c);
                        }
                    }
                    return;
                }
                _ => {}
            }
            while woken.len() < max {
                let Some(&v) = l.inactive.first() else { break };
                let Some(c) = sched::claim_pcore(self.id, v) else {
                    break;
                };
                l.inactive.remove(0);
                l.online.push(v).expect("MAX_VCORES capacity");
                let slot = &self.vcores[v as usize];
                slot.pcore.store(c as u32, Ordering::Release);
                slot.mapped.store(true, Ordering::Release);
                let _ = woken.push(c);
            }
            if !l.online.is_empty() {
                self.set_state(ProcState::RunningM);
            }
        });
        for &c in &woken {
            sched::wake_pcore(c);
        }
        self.counters
            .starts
            .fetch_add(woken.len() as u64, Ordering::Relaxed);
        woken.len()
    }

    /// `ProcOps::wakeup`: a WAITING process becomes runnable and gets
    /// cores, starting from the inactive head.
    pub fn wakeup(&self) {
        let woke = self.locked(|_| {
            if self.state() != ProcState::Waiting {
                return false;
            }
            self.set_state(if self.mcp {
                ProcState::RunnableM
            } else {
                ProcState::RunnableS
            });
            true
        });
        if woke {
            self.counters.wakeups.fetch_add(1, Ordering::Relaxed);
            self.grant(MAX_VCORES);
        }
    }

    /// Bulk-preempts the online vcores `pick` chooses (keeping at least one
    /// online if `keep_one`), each due back at the tick `due()` returns.
    /// Returns the cores to send the preemption IPI to. MCPs only.
    pub fn preempt(
        &self,
        mut pick: impl FnMut(u32) -> bool,
        keep_one: bool,
        mut due: impl FnMut() -> u64,
    ) -> Vec<usize, MAX_VCORES> {
        let mut cores = Vec::new();
        if !self.mcp {
            return cores;
        }
        self.locked(|l| {
            if self.state() == ProcState::Dying {
                return;
            }
            let snapshot = l.online.clone();
            for v in snapshot {
                if (keep_one && l.online.len() <= 1) || !pick(v) {
                    continue;
                }
                let pos = l.online.iter().position(|&x| x == v).expect("online");
                l.online.remove(pos);
                l.bulk_preempted.push(v).expect("MAX_VCORES capacity");
                let slot = &self.vcores[v as usize];
                slot.mapped.store(false, Ordering::Release);
                slot.restart_tick.store(due(), Ordering::Relaxed);
                // Tell the process (its other vcores recover this one's
                // public mailbox while it is away).
                if let Some(vcpd) = self.vcpd(v) {
                    vcpd.set_flags(VcpdFlags::PREEMPTED, Ordering::SeqCst);
                }
                let _ = cores.push(slot.pcore.load(Ordering::Relaxed) as usize);
            }
            if l.online.is_empty() && !l.bulk_preempted.is_empty() {
                self.set_state(ProcState::RunnableM);
            }
        });
        self.counters
            .preemptions
            .fetch_add(cores.len() as u64, Ordering::Relaxed);
        cores
    }

    /// Restarts every bulk-preempted vcore due at `tick` (all of them if
    /// `all`), on the core it was preempted on. Returns how many.
    pub fn restart_due(&self, tick: u64, all: bool) -> usize {
        let n = self.locked(|l| {
            if self.state() == ProcState::Dying {
                return 0;
            }
            let mut n = 0;
            let snapshot = l.bulk_preempted.clone();
            for v in snapshot {
                let slot = &self.vcores[v as usize];
                if !all && slot.restart_tick.load(Ordering::Relaxed) > tick {
                    continue;
                }
                let pos = l.bulk_preempted.iter().position(|&x| x == v).expect("bulk");
                l.bulk_preempted.remove(pos);
                l.online.push(v).expect("MAX_VCORES capacity");
                if let Some(vcpd) = self.vcpd(v) {
                    vcpd.clear_flags(VcpdFlags::PREEMPTED, Ordering::SeqCst);
                    // Rule 3: make it look at its mailboxes before anything else.
                    vcpd.notif_pending.store(true, Ordering::Release);
                }
                sched::mark_restarted(slot.pcore.load(Ordering::Relaxed) as usize);
                // Last: the parked core resumes when it sees this.
                slot.mapped.store(true, Ordering::Release);
                n += 1;
            }
            if !l.online.is_empty() {
                self.set_state(ProcState::RunningM);
            }
            n
        });
        self.counters
            .restarts
            .fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Destroys the process: DYING (sends are dropped from now on), every
    /// vcore unmapped and its core released; vcore code notices and stops.
    pub fn destroy(&self) {
        self.locked(|_| {
            self.set_state(ProcState::Dying);
            for v in 0..self.nr_vcores {
                let slot = &self.vcores[v as usize];
                slot.mapped.store(false, Ordering::Release);
                let pcore = slot.pcore.swap(NONE, Ordering::AcqRel);
                sched::release_pcore(pcore, self.id, v);
            }
        });
    }
}
