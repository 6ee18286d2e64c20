//! The process model: what the kernel knows about a process, and the
//! operations that change it (create, start, yield, preempt, restart, wake,
//! kill).
//!
//! A [`Process`] owns an address space (address_space.rs: its page tables
//! and pages) holding its procdata, the ABI's `vcpd_abi::ProcData` (the
//! kernel-event table and 64 VCPDs), shared with the process, and the
//! blocks its ring-3 code finds its way with (`user::abi`). Its vcores (the
//! three ordered lists, which core each runs on, and the event-visible
//! state: running, WAITING, dying) are event-core's [`VcoreSet`], behind
//! this kernel's own process lock ([`IrqSpinLock`]: a spin lock held with
//! interrupts off, so the scheduler's tick, which takes it in interrupt
//! context, never spins on its own CPU's holder).
//!
//! This file only does the kernel's part of each transition: pick a free
//! core, call the set, then do what the set says (start the vcore on that
//! core, free the core, send the preemption IPI). The locking, fences and
//! re-checks the no-loss guarantee rests on are the library's. How a vcore
//! runs on its core, in ring 3, is sched.rs's and trap.rs's.
//!
//! Preemption here is *bulk* preemption of some or all vcores: the set
//! moves them online → bulk_preempted (keeping `CAN_RCV_MSG`: they check
//! their mailboxes when restarted) and sets `VC_PREEMPTED` in their VCPD so
//! the process's other vcores drain their public mailboxes; the preemption
//! IPI makes each core save its vcore's ring-3 context in the VCPD's
//! preemption slot and park until [`Process::restart_due`] puts the vcore
//! back.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use event_core::recv::{HandlerTable, Receiver};
use event_core::vcores::{ProcControl, ProcKind, VcoreLists, VcoreSet};
pub use event_core::vcores::{ProcState, Refused, VcoreList};
use event_core::{EventStats, PcoreId, ProcEvents, VcoreId};
use heapless::Vec;
use spin::Once;
use vcpd_abi::{ProcData, UserMemoryExt, Vcpd};
use x86_64::instructions::interrupts;

use crate::platform::percpu;
use crate::platform::time;
use crate::platform::user_region::PAGE_SIZE;
use crate::process::address_space::AddressSpace;
use crate::process::heap::Runtime;
use crate::process::sched;
use crate::user::abi::{KIND_COOPERATIVE, KIND_HOSTILE, ProcBlock, VcoreTls};
use crate::user::program::{self, ProgramRef};
use crate::user::{UserRt, entry};

/// The most vcores a process has here: one per application processor.
pub const MAX_VCORES: usize = percpu::MAX_CPUS - 1;
/// The most processes the demo creates (the app, the SCP, the hostile
/// process, and the attackers of scenario 7).
pub const MAX_PROCS: usize = 16;
/// "No vcore" / "no core" in the kernel's atomic records: event-core's one
/// sentinel.
pub const NONE: u32 = event_core::NO_ID;
/// Pages of each of a vcore's two stacks (vcore context, uthread).
const STACK_PAGES: usize = 8;

/// Vcore `v` (the demo's vcore ids are always below `MAX_NUM_VCORES`).
///
/// # Panics
/// If `v` is not below `MAX_NUM_VCORES`.
pub fn vc(v: u32) -> VcoreId {
    VcoreId::new(v).expect("a vcore id below MAX_NUM_VCORES")
}

/// What code a process's vcores run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The receive half of event-core (user/entry.rs).
    Cooperative,
    /// Code that scribbles over its own shared memory and attacks the
    /// kernel, and never receives (the hostile-process scenario).
    Hostile,
}

/// How a process died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Death {
    /// A CPU exception in ring 3 (fault.rs).
    Fault {
        /// The vector (14 #PF, 13 #GP...).
        vector: u8,
        /// The error code.
        error: u64,
        /// CR2 for a page fault, else 0.
        addr: u64,
        /// Where.
        rip: u64,
        /// On which vcore.
        vcore: u32,
    },
    /// It asked to (the `EXIT` system call).
    Exit,
    /// The kernel destroyed it.
    Destroyed,
}

/// The kernel's per-vcore record (where it runs is the [`VcoreSet`]'s).
#[derive(Debug)]
struct VcoreSlot {
    /// The core it last ran on: a bulk-preempted vcore is restarted there
    /// (its core is parked, waiting for it).
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
    /// System calls made.
    pub syscalls: AtomicU64,
    /// System calls refused as malformed (bad number, pointer, argument).
    pub bad_syscalls: AtomicU64,
    /// Notifications delivered by entering the vcore entry (upcalls).
    pub upcalls: AtomicU64,
    /// Ring-3 contexts saved into a VCPD's preemption slot.
    pub ctx_saves: AtomicU64,
    /// CPU exceptions in ring 3 (each one kills, or finds it dying).
    pub faults: AtomicU64,
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
    /// Reserve an unmapped guard page on each side of the address space.
    pub guarded: bool,
}

/// A process.
pub struct Process {
    id: usize,
    name: &'static str,
    kind: Kind,
    mcp: bool,
    nr_vcores: u32,
    space: AddressSpace,
    /// User address of its procdata (`vcpd_abi::ProcData`), chosen by the
    /// kernel at creation: the process cannot move it.
    procdata_addr: usize,
    /// Its procdata, checked once (pinned: mapped for the process's life).
    procdata: &'static ProcData,
    /// Its process block and its vcores' TLS blocks (`user::abi`).
    block: &'static ProcBlock,
    tls: &'static [VcoreTls],
    /// Its handler table, in its memory.
    handlers: &'static HandlerTable<UserRt>,
    /// Its event state: vcores, counters, UCQ locks (event-core).
    events: ProcEvents<Vcores>,
    vcores: [VcoreSlot; MAX_VCORES],
    /// The set-up code's handler table (never dispatched: set-up only
    /// writes mailboxes and queues).
    setup_handlers: HandlerTable<Runtime>,
    rt: Runtime,
    death: Once<Death>,
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

/// Creates process `pid` (once; later calls return the same process): its
/// address space with procdata, process block, TLS blocks, handler table
/// and stacks; its VCPD mailboxes set up as UCQs and its vcore entry,
/// stacks and TLS advertised in its VCPDs (what a process's runtime does
/// before its vcores first run), with every vcore inactive and the
/// process WAITING for cores.
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
        let rx = p.setup_receiver();
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

/// A space, as `UserMemory` (for blocks the kernel places at creation).
struct In<'a>(&'a AddressSpace);

// SAFETY: forwards to the space's page-table walk, which returns the
// identity pointer of mapped, user-writable pages of this process only
// (proc_ops.rs has the full argument).
unsafe impl vcpd_abi::UserMemory for In<'_> {
    fn translate(&self, addr: usize, len: usize) -> Option<core::ptr::NonNull<u8>> {
        self.0.translate(addr, len)
    }
}

/// A kernel reference to the `n` `T`s at `addr`, blocks the kernel just
/// placed in a process's pinned pages.
fn placed<T: vcpd_abi::SharedMem>(space: &AddressSpace, addr: usize, n: usize) -> &'static [T] {
    let space = In(space);
    let r: &[T] = space.user_slice(addr, n).expect("a placed block is mapped");
    // SAFETY: pinned pages stay mapped and reserved for the process for the
    // rest of the run (processes are never freed), so the reference may
    // outlive the borrow of the space; `T: SharedMem` keeps it sound while
    // the process writes the bytes.
    unsafe { &*core::ptr::from_ref(r) }
}

impl Process {
    fn new(id: usize, spec: Spec) -> Self {
        let nr_vcores = if spec.mcp { spec.vcores } else { 1 };
        let space = AddressSpace::new(spec.pages, spec.guarded, spec.kind == Kind::Cooperative);
        let pages = |bytes: usize| bytes.div_ceil(PAGE_SIZE);
        let pinned = |n| {
            space
                .alloc_pinned(n)
                .expect("room in a fresh address space")
        };
        let procdata_addr = pinned(pages(size_of::<ProcData>()));
        let block_addr = pinned(pages(size_of::<ProcBlock>()));
        let tls_addr = pinned(pages(size_of::<VcoreTls>() * nr_vcores as usize));
        let handlers_addr = pinned(pages(size_of::<HandlerTable<UserRt>>()));
        // SAFETY: fresh pinned pages of the process (zeroed, mapped, never
        // freed), aligned to a page, which suits a `HandlerTable`; nothing
        // references them yet.
        let handlers = unsafe {
            let t = core::ptr::with_exposed_provenance_mut::<HandlerTable<UserRt>>(handlers_addr);
            t.write(HandlerTable::new());
            &*t
        };
        let procdata: &'static ProcData = &placed(&space, procdata_addr, 1)[0];
        let block: &'static ProcBlock = &placed(&space, block_addr, 1)[0];
        let tls: &'static [VcoreTls] = placed(&space, tls_addr, nr_vcores as usize);
        let r = Ordering::Relaxed;
        block.program.store(
            core::ptr::from_ref::<&dyn program::VcoreProgram>(&program::IDLE).expose_provenance(),
            r,
        );
        block.kind.store(
            match spec.kind {
                Kind::Cooperative => KIND_COOPERATIVE,
                Kind::Hostile => KIND_HOSTILE,
            },
            r,
        );
        block.mcp.store(u32::from(spec.mcp), r);
        block.nr_vcores.store(nr_vcores, r);
        block.procdata.store(procdata_addr, r);
        block.handlers.store(handlers_addr, r);
        block.tsc_hz.store(time::tsc_hz(), r);
        for (v, t) in tls.iter().enumerate() {
            t.self_addr
                .store(core::ptr::from_ref(t).expose_provenance(), r);
            t.proc_block.store(block_addr, r);
            t.vcoreid.store(v as u32, r);
            t.recovering.store(u32::MAX, r);
            let uthread_stack = space.alloc_stack(STACK_PAGES).expect("room for stacks");
            t.uthread_stack.store(uthread_stack, r);
            let vcpd = &procdata.vcpd[v];
            let vcore_stack = space.alloc_stack(STACK_PAGES).expect("room for stacks");
            vcpd.vcore_entry.store(entry::vcore_entry_addr(), r);
            vcpd.vcore_stack.store(vcore_stack, r);
            vcpd.vcore_tls_desc
                .store(core::ptr::from_ref(t).expose_provenance(), r);
        }
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
            procdata_addr,
            procdata,
            block,
            tls,
            handlers,
            events: ProcEvents::new(VcoreSet::new(kind, nr_vcores, percpu::current_index)),
            vcores: [const { VcoreSlot::new() }; MAX_VCORES],
            setup_handlers: HandlerTable::new(),
            rt: Runtime::new(id),
            death: Once::new(),
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
    pub fn space(&self) -> &AddressSpace {
        &self.space
    }

    /// The process gives a page back. The kernel credits the UCQ page
    /// budget (`ucq::UserPageAlloc::ucq_page_budget` limits the pages the
    /// producers may allocate for it that it has not returned).
    pub fn free_user_page(
        &self,
        addr: usize,
    ) -> Result<(), crate::process::address_space::FreeError> {
        self.space().free_page(addr)?;
        self.stats().ucq.page_returned();
        Ok(())
    }

    /// The guard pages just below and above its space (0 if none).
    pub fn guard_pages(&self) -> [usize; 2] {
        self.space.guard_pages()
    }

    /// User address of its procdata.
    pub fn procdata_addr(&self) -> usize {
        self.procdata_addr
    }

    /// Its procdata (the kernel's view, checked once at creation).
    pub fn procdata(&self) -> &'static ProcData {
        self.procdata
    }

    /// Its process block (in its memory).
    pub fn block(&self) -> &'static ProcBlock {
        self.block
    }

    /// Vcore `v`'s TLS block (in the process's memory).
    pub fn tls(&self, v: u32) -> Option<&'static VcoreTls> {
        self.tls.get(v as usize)
    }

    /// Every vcore's TLS block.
    pub fn tls_blocks(&self) -> &'static [VcoreTls] {
        self.tls
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

    /// Its handler table, which the scenarios' set-up (the process's main
    /// thread) registers handlers in; its vcores dispatch from it in ring 3.
    ///
    /// # Panics
    /// For a hostile process: its memory is garbage by design, and the
    /// kernel does not use a Rust reference into garbage.
    pub fn handlers(&self) -> &'static HandlerTable<UserRt> {
        assert_eq!(
            self.kind,
            Kind::Cooperative,
            "{}: no handler table to use",
            self.name
        );
        self.handlers
    }

    /// Its main thread's allocator (for the scenarios' set-up).
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// A receiver for set-up code (mailboxes, kernel-event registrations):
    /// it never dispatches.
    pub fn setup_receiver(&'static self) -> Receiver<'static, Runtime> {
        // SAFETY: the process sets its queues up only through event-core's
        // `setup` (scenarios, heap.rs), in pages of its own space that are
        // never released while it exists.
        unsafe { Receiver::new(self.procdata, &self.setup_handlers, &self.rt) }
    }

    /// The event-visible state.
    pub fn state(&self) -> ProcState {
        self.vcores().state()
    }

    /// How it died, if it did.
    pub fn death(&self) -> Option<Death> {
        self.death.get().copied()
    }

    /// Records how it died; whether this was the first cause (which wins).
    pub(crate) fn set_death(&self, d: Death) -> bool {
        let mut first = false;
        self.death.call_once(|| {
            first = true;
            d
        });
        first
    }

    /// Installs the program its vcores run (between scenarios).
    pub fn set_program(&self, program: ProgramRef) {
        self.block.program.store(
            core::ptr::from_ref::<&dyn program::VcoreProgram>(program).expose_provenance(),
            Ordering::Release,
        );
    }

    /// Tells every vcore to yield (`true`) or to keep running (`false`).
    pub fn set_finish(&self, finish: bool) {
        self.block
            .finish
            .store(u32::from(finish), Ordering::Release);
    }

    /// Whether the vcore is mapped (unlocked peek).
    pub fn vcore_mapped(&self, v: u32) -> bool {
        VcoreId::new(v).is_some_and(|v| self.vcores().is_mapped(v))
    }

    /// Whether vcore `v` is mapped to core `cpu`.
    pub fn vcore_on(&self, v: u32, cpu: usize) -> bool {
        VcoreId::new(v)
            .and_then(|v| self.vcores().pcore_of(v))
            .is_some_and(|c| c.get() as usize == cpu)
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

    /// The kernel's view of vcore `v`'s VCPD.
    pub fn vcpd(&self, v: u32) -> Option<&'static Vcpd> {
        self.vcpds().get(v as usize)
    }

    /// The kernel's view of its VCPD array.
    pub(crate) fn vcpds(&self) -> &'static [Vcpd] {
        &self.procdata.vcpd[..self.nr_vcores as usize]
    }

    /// Messages its vcores recovered from preempted peers' mailboxes (as
    /// they counted them in their TLS blocks).
    pub fn recovered(&self) -> u64 {
        self.tls
            .iter()
            .map(|t| t.recovered.load(Ordering::Relaxed))
            .sum()
    }

    /// The kernel's half of a yield, called from vcore `v`'s `YIELD`
    /// system call (after its `prepare_to_yield`): event-core's
    /// `VcoreSet::yield_vcore`, then the core goes back to the scheduler.
    /// On success the vcore's ring-3 run ends.
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
            if let Some(t) = self.tls(v.get()) {
                // Before the restart: the vcore's next entry runs
                // `vcore_online` (host rule 3).
                t.online_pending.store(1, Ordering::Release);
            }
            if self.vcores().restart(self.vcpds(), v, pcore).is_ok() {
                // Its core waits, halted, for it (sched.rs).
                sched::wake_pcore(pcore.get() as usize);
                n += 1;
            }
        }
        self.counters
            .restarts
            .fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Destroys the process: DYING (sends are dropped from now on), every
    /// vcore unmapped and its core released and interrupted (its ring-3 run
    /// ends at the interrupt; a parked core notices and leaves).
    pub fn destroy(&self, why: Death) {
        self.set_death(why);
        if let Ok(stops) = self.vcores().destroy() {
            let me = percpu::current_index();
            for stop in stops {
                let cpu = stop.pcore.get() as usize;
                sched::release_pcore(cpu, self.id, stop.vcore.get());
                if cpu != me {
                    sched::kick_pcore(cpu);
                }
            }
        }
    }
}
