//! The process model: what the kernel knows about a process, and the
//! operations that change it (start, yield, preempt, restart, wake, kill).
//!
//! A [`Process`] owns an address space (a range of the user region,
//! uspace.rs) holding its procdata: the ABI's `vcpd_abi::ProcData` (the
//! kernel-event table and 64 VCPDs), shared with the process. Its vcores
//! (the three ordered lists, which core each runs on, and the
//! event-visible state: running, WAITING, dying) are event-core's
//! [`VcoreSet`], behind this kernel's own process lock ([`IrqSpinLock`]:
//! a spin lock held with interrupts off, so the scheduler's tick, which
//! takes it in interrupt context, never spins on its own CPU's holder).
//!
//! This file only does the kernel's part of each transition: pick a free
//! core, call the set, then do what the set says (start the vcore on that
//! core, free the core, send the preemption IPI). The locking, fences and
//! re-checks the no-loss guarantee rests on are the library's.
//!
//! Preemption here is *bulk* preemption of some or all vcores: the set
//! moves them online → bulk_preempted (keeping `CAN_RCV_MSG`: they check
//! their mailboxes when restarted) and sets `VC_PREEMPTED` in their VCPD so
//! the process's other vcores drain their public mailboxes; their cores
//! park in the preemption IPI's handler until [`Process::restart_due`]
//! puts them back.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use event_core::recv::{HandlerTable, Receiver};
use event_core::vcores::{ProcControl, ProcKind, VcoreLists, VcoreSet};
pub use event_core::vcores::{ProcState, Refused, VcoreList};
use event_core::{EventStats, PcoreId, ProcEvents, VcoreId};
use heapless::Vec;
use spin::{Once, RwLock};
use vcpd_abi::procdata::vcpd_offset;
use vcpd_abi::{ProcData, UserMemoryExt, Vcpd};
use x86_64::instructions::interrupts;

use crate::process::address_space::UserSpace;
use crate::process::heap::Runtime;
use crate::process::sched;
use crate::user::program::{self as vcore, VcoreProgram};

/// The most vcores a process has here: one per application processor.
pub const MAX_VCORES: usize = crate::platform::percpu::MAX_CPUS - 1;
/// The most processes the demo creates.
pub const MAX_PROCS: usize = 3;
/// "No vcore" / "no core" in the kernel's atomic records: event-core's one
/// sentinel.
pub const NONE: u32 = event_core::NO_ID;

/// Vcore `v` (the demo's vcore ids are always below `MAX_NUM_VCORES`).
///
/// # Panics
/// If `v` is not below `MAX_NUM_VCORES`.
pub fn vc(v: u32) -> VcoreId {
    VcoreId::new(v).expect("a vcore id below MAX_NUM_VCORES")
}

/// A receiver over a process's procdata: what its vcore code uses.
pub type Rx = Receiver<'static, Runtime>;
/// The receiver type handlers get (any lifetime: `HandlerFn` is generic).
pub type Recv<'a> = Receiver<'a, Runtime>;

/// What code a process's vcores run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The receive half of event-core (vcore.rs).
    Cooperative,
    /// Code that scribbles over its own shared memory and never receives
    /// (the hostile-process scenario).
    Hostile,
}

/// The kernel's per-vcore record (where it runs is the [`VcoreSet`]'s).
#[derive(Debug)]
struct VcoreSlot {
    /// The core it last ran on: a bulk-preempted vcore is restarted there
    /// (its core is parked in the preemption handler).
    last_pcore: AtomicU32,
    /// Scheduler tick at which a bulk-preempted vcore is due back.
    restart_tick: AtomicU64,
}

impl VcoreSlot {
    const fn new() -> Self {
        Self {
            last_pcore: AtomicU32::new(NONE),
            restart_tick: AtomicU64::new(0),
        }
    }
}

/// The process lock: a spin lock held with interrupts off (a
/// `lock_api::RawMutex`, so event-core's `VcoreSet` takes it).
#[derive(Debug)]
pub struct IrqSpinLock {
    locked: AtomicBool,
    /// Whether interrupts were on when the holder took the lock (written
    /// only by the holder).
    irqs_were_on: AtomicBool,
}

// SAFETY: a compare-and-swap from false to true with acquire ordering
// admits one holder at a time, and `unlock` hands the lock back with a
// release store; interrupts stay off in between, so an interrupt handler
// on the holder's CPU cannot try to take it.
unsafe impl lock_api::RawMutex for IrqSpinLock {
    const INIT: Self = Self {
        locked: AtomicBool::new(false),
        irqs_were_on: AtomicBool::new(false),
    };
    type GuardMarker = lock_api::GuardNoSend;

    fn lock(&self) {
        let were_on = interrupts::are_enabled();
        interrupts::disable();
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        self.irqs_were_on.store(were_on, Ordering::Relaxed);
    }

    fn try_lock(&self) -> bool {
        let were_on = interrupts::are_enabled();
        interrupts::disable();
        let got = self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if got {
            self.irqs_were_on.store(were_on, Ordering::Relaxed);
        } else if were_on {
            interrupts::enable();
        }
        got
    }

    unsafe fn unlock(&self) {
        let were_on = self.irqs_were_on.load(Ordering::Relaxed);
        self.locked.store(false, Ordering::Release);
        if were_on {
            interrupts::enable();
        }
    }
}

/// A process's vcores: event-core's lifecycle under this kernel's lock.
pub type Vcores = VcoreSet<MAX_VCORES, IrqSpinLock>;

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
    /// Its event state: vcores, counters, UCQ locks (event-core).
    events: ProcEvents<Vcores>,
    vcores: [VcoreSlot; MAX_VCORES],
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
            rx.init_vcpd_mboxes(vc(v), MboxKind::Ucq, MboxKind::Ucq)
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
        let pd_pages = size_of::<ProcData>().div_ceil(crate::platform::user_region::PAGE_SIZE);
        let procdata = space
            .alloc_pages(pd_pages)
            .expect("a fresh address space has room for procdata");
        let nr_vcores = if spec.mcp { spec.vcores } else { 1 };
        let kind = if spec.mcp {
            ProcKind::Mcp
        } else {
            ProcKind::Scp
        };
        Self {
            id,
            name: spec.name,
            kind: spec.kind,
            mcp: spec.mcp,
            nr_vcores,
            space,
            guards,
            procdata,
            events: ProcEvents::new(VcoreSet::new(
                kind,
                nr_vcores,
                crate::platform::percpu::current_index,
            )),
            vcores: [const { VcoreSlot::new() }; MAX_VCORES],
            handlers: HandlerTable::new(),
            rt: Runtime::new(id),
            program: RwLock::new(&vcore::IDLE),
            finish: AtomicBool::new(false),
            counters: Counters::default(),
        }
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

    /// Its procdata (the kernel's checked view; procdata lies in the
    /// process's space for its whole life).
    pub fn procdata(&self) -> &ProcData {
        self.user_ref::<ProcData>(self.procdata)
            .expect("procdata lies in the process's own space")
    }

    /// Its event counters.
    pub fn stats(&self) -> &EventStats {
        self.events.stats()
    }

    /// Its event state (event-core's view of the process).
    pub fn events(&self) -> &ProcEvents<Vcores> {
        &self.events
    }

    /// Its vcores.
    pub fn vcores(&self) -> &Vcores {
        self.events.vcores()
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
        // SAFETY: the process sets its queues up only through event-core's
        // `setup` (scenarios, runtime.rs), in pages of its own space that
        // are never released while it exists.
        unsafe { Receiver::new(self.procdata(), &self.handlers, &self.rt) }
    }

    /// The event-visible state.
    pub fn state(&self) -> ProcState {
        self.vcores().state()
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
        VcoreId::new(v).is_some_and(|v| self.vcores().is_mapped(v))
    }

    /// The core vcore `v` is mapped to, or last ran on.
    pub fn vcore_pcore(&self, v: u32) -> Option<usize> {
        let v = VcoreId::new(v)?;
        match self.vcores().pcore_of(v) {
            Some(c) => Some(c.get() as usize),
            None => match self.slot(v)?.last_pcore.load(Ordering::Acquire) {
                NONE => None,
                c => Some(c as usize),
            },
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
        self.vcores().head(list).map(VcoreId::get)
    }

    fn slot(&self, v: VcoreId) -> Option<&VcoreSlot> {
        (v.get() < self.nr_vcores)
            .then(|| self.vcores.get(v.index()))
            .flatten()
    }

    /// The kernel's checked view of vcore `v`'s VCPD.
    pub fn vcpd(&self, v: u32) -> Option<&Vcpd> {
        if v >= self.nr_vcores {
            return None;
        }
        self.user_ref::<Vcpd>(self.procdata + vcpd_offset(v as usize))
    }

    /// The kernel's view of its VCPD array.
    pub(crate) fn vcpds(&self) -> &[Vcpd] {
        &self.procdata().vcpd[..self.nr_vcores as usize]
    }

    /// The kernel's half of a yield, called by vcore `v` (after its
    /// `prepare_to_yield`): event-core's `VcoreSet::yield_vcore`, then the
    /// core goes back to the scheduler. On success the caller must stop
    /// running vcore code.
    pub fn sys_yield(&self, v: u32) -> Result<(), Refused> {
        let v = VcoreId::new(v).ok_or(Refused::NotOnline)?;
        match self.vcores().yield_vcore(self.vcpds(), v) {
            Ok(left) => {
                sched::release_pcore(left.pcore.get() as usize, self.id, v.get());
                self.counters.yields.fetch_add(1, Ordering::Relaxed);
                if left.waiting {
                    self.counters.waits.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => {
                if e == Refused::NotifPending {
                    self.counters.yields_refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    /// Starts up to `max` vcores from the head of the inactive list on
    /// free cores (event-core's `VcoreSet::grant`), and wakes those cores.
    /// Returns how many started.
    pub fn grant(&self, max: usize) -> usize {
        let mut started = 0;
        while started < max {
            let Some(cpu) = sched::reserve_pcore(self.id) else {
                break;
            };
            match self.vcores().grant(PcoreId::new(cpu as u32)) {
                Ok(run) => {
                    if let Some(slot) = self.slot(run.vcore) {
                        slot.last_pcore.store(run.pcore.get(), Ordering::Release);
                    }
                    sched::assign_pcore(cpu, self.id, run.vcore.get());
                    started += 1;
                }
                Err(_) => {
                    sched::unreserve_pcore(cpu, self.id);
                    break;
                }
            }
        }
        self.counters
            .starts
            .fetch_add(started as u64, Ordering::Relaxed);
        started
    }

    /// `ProcOps::make_runnable`: the process left WAITING; give it cores,
    /// starting from the inactive head.
    pub fn make_runnable(&self) {
        self.counters.wakeups.fetch_add(1, Ordering::Relaxed);
        self.grant(MAX_VCORES);
    }

    /// Wakes a WAITING process (as a WAKEUP event would): it becomes
    /// runnable and gets cores.
    pub fn wakeup(&self) {
        if self.vcores().wakeup() == Ok(true) {
            self.make_runnable();
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
        let Ok(online) = self.vcores().members(VcoreList::Online) else {
            return cores;
        };
        for v in online {
            if (keep_one && self.vcores().num_vcores() <= 1) || !pick(v.get()) {
                continue;
            }
            let Some(slot) = self.slot(v) else { continue };
            // The due tick first: the restart path reads it once the vcore
            // is on the bulk-preempted list.
            slot.restart_tick.store(due(), Ordering::Relaxed);
            if let Ok(stop) = self.vcores().preempt(self.vcpds(), v) {
                slot.last_pcore.store(stop.pcore.get(), Ordering::Release);
                let _ = cores.push(stop.pcore.get() as usize);
            }
        }
        self.counters
            .preemptions
            .fetch_add(cores.len() as u64, Ordering::Relaxed);
        cores
    }

    /// Restarts every bulk-preempted vcore due at `tick` (all of them if
    /// `all`), on the core it was preempted on (parked in the preemption
    /// handler until the vcore is mapped again). Returns how many.
    pub fn restart_due(&self, tick: u64, all: bool) -> usize {
        let Ok(bulk) = self.vcores().members(VcoreList::BulkPreempted) else {
            return 0;
        };
        let mut n = 0;
        for v in bulk {
            let Some(slot) = self.slot(v) else { continue };
            if !all && slot.restart_tick.load(Ordering::Relaxed) > tick {
                continue;
            }
            let pcore = PcoreId::new(slot.last_pcore.load(Ordering::Acquire));
            if self.vcores().restart(self.vcpds(), v, pcore).is_ok() {
                n += 1;
            }
        }
        self.counters
            .restarts
            .fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Destroys the process: DYING (sends are dropped from now on), every
    /// vcore unmapped and its core released; vcore code notices and stops.
    pub fn destroy(&self) {
        if let Ok(stops) = self.vcores().destroy() {
            for stop in stops {
                sched::release_pcore(stop.pcore.get() as usize, self.id, stop.vcore.get());
            }
        }
    }
}
