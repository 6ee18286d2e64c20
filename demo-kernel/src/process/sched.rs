//! Physical cores for vcores, and the scheduler that preempts and restarts
//! them.
//!
//! **Cores.** CPU 0 is the kernel CPU: it runs the scenarios, sends the
//! events and drives the scheduler from its timer tick. Every AP is a
//! *pcore* a vcore can run on: during the scenarios each AP runs
//! [`pcore_loop`] (one long job), which waits (halted) until a process
//! assigns a vcore to it and then *runs the vcore*: it loads the process's
//! page tables and the vcore's TLS, and enters ring 3 (platform/ring3.rs)
//! at the vcore entry; it gets control back when the vcore's run on this
//! core ends (trap.rs: yielded, preempted, or its process died). A pcore's
//! assignment is one atomic word, claimed with a compare-and-swap by
//! [`reserve_pcore`] under the claiming process's lock; what runs in ring
//! 3 on it right now is another ([`Pcore::running`]), since a core may be
//! reassigned while the old vcore's run is still ending.
//!
//! **Preemption.** A bulk-preempted vcore's core gets the preemption IPI;
//! on the way back to ring 3 the trap path saves the vcore's context in
//! its VCPD (`vcore_ctx`) and ends the run; the core then *parks* (halted,
//! assigned to the vcore) until [`Process::restart_due`] maps the vcore
//! back and wakes it, and resumes the saved context. The parked vcore
//! keeps whatever it held (a UCQ consumer lock, a claimed slot); vcores
//! that wait on it wait until the restart, which the scheduler guarantees
//! within a few ticks.
//!
//! **Interrupts** (vectors from the scenario range 0x30..=0xdf):
//! - [`NOTIFY_VECTOR`]: `ProcOps::ipi`. The handler only records the TSC
//!   (scenario 8) and counts: the upcall is decided on the way back to ring
//!   3 (trap.rs).
//! - [`PREEMPT_VECTOR`]: sent after the kernel moved the vcore to the
//!   bulk-preempted list, and to stop the vcores of a dying process: the
//!   handler does nothing, the way back to ring 3 does it.
//! - The APIC timer tick: on an AP it ends a `hlt`, and the way back to
//!   ring 3 looks at the vcore's state; on the kernel CPU it runs the
//!   scheduler's policy, [`Chaos`].
//!
//! **Chaos** is the scheduler's policy for a scenario: each tick, with
//! given odds, bulk-preempt a random subset of a process's online vcores
//! (each due back 1..N ticks later), restart those that are due, and start
//! the inactive head on a free core. It runs in interrupt context on CPU 0,
//! so it can strike in the middle of a send on that CPU.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use apic::Vector;
use heapless::Vec;
use spin::Mutex;
use x86_64::instructions::interrupts;

use crate::platform::idt::{self, InterruptFrame};
use crate::platform::jobs::{self, JobHandle};
use crate::platform::percpu::{self, MAX_CPUS};
use crate::platform::{lapic, ring3, time};
use crate::process::trap::{self, Stop};
use crate::process::{self, ProcState, Process, address_space, context};

/// The notification IPI (`ProcOps::ipi_vcore`).
pub const NOTIFY_VECTOR: Vector = Vector::new(0x50).unwrap();
/// The preemption IPI: the core saves its vcore's context and parks until
/// the vcore is restarted (or leaves a dying process's vcore).
pub const PREEMPT_VECTOR: Vector = Vector::new(0x60).unwrap();
/// Tick rate on every CPU while the scenarios run.
pub const TICK_HZ: u32 = 1000;

const FREE: u32 = u32::MAX;
/// The vcore half of an assignment while the core is only reserved.
const RESERVED: u32 = 0xffff;

/// The scheduler's view of one physical core.
#[derive(Debug)]
pub struct Pcore {
    /// `pid << 16 | vcore` of the vcore assigned here, or `FREE`.
    assigned: AtomicU32,
    /// The core runs [`pcore_loop`] and takes assignments.
    in_service: AtomicBool,
    /// Asks [`pcore_loop`] to return.
    exit: AtomicBool,
    /// `pid << 16 | vcore` of the vcore whose ring-3 run is on this core
    /// now, or `FREE` (the trap path's "who am I").
    running: AtomicU32,
    /// The core is parked now: its vcore is bulk-preempted.
    parked: AtomicBool,
    /// The vcore here sleeps in its `HALT` system call now.
    pub(crate) halted: AtomicBool,
    /// Notification interrupts taken.
    pub notify_irqs: AtomicU64,
    /// TSC at the last notification interrupt.
    pub notify_tsc: AtomicU64,
    /// Times the core parked.
    pub parks: AtomicU64,
}

impl Pcore {
    const fn new() -> Self {
        Self {
            assigned: AtomicU32::new(FREE),
            in_service: AtomicBool::new(false),
            exit: AtomicBool::new(false),
            running: AtomicU32::new(FREE),
            parked: AtomicBool::new(false),
            halted: AtomicBool::new(false),
            notify_irqs: AtomicU64::new(0),
            notify_tsc: AtomicU64::new(0),
            parks: AtomicU64::new(0),
        }
    }

    /// The vcore assigned here, as `(pid, vcoreid)`.
    pub fn assigned(&self) -> Option<(usize, u32)> {
        decode(self.assigned.load(Ordering::Acquire))
    }

    /// Whether the core is parked (its vcore bulk-preempted).
    pub fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Acquire)
    }

    /// Whether the vcore here sleeps in its `HALT` system call.
    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    /// The vcore whose ring-3 run is on this core now, as `(pid, vcoreid)`.
    pub fn running(&self) -> Option<(usize, u32)> {
        decode(self.running.load(Ordering::Acquire))
    }
}

static PCORES: [Pcore; MAX_CPUS] = [const { Pcore::new() }; MAX_CPUS];
static JOBS: Mutex<Vec<JobHandle, MAX_CPUS>> = Mutex::new(Vec::new());

fn encode(pid: usize, v: u32) -> u32 {
    ((pid as u32) << 16) | v
}

fn decode(a: u32) -> Option<(usize, u32)> {
    (a != FREE && a & 0xffff != RESERVED).then_some(((a >> 16) as usize, a & 0xffff))
}

/// Pcore `cpu`.
pub fn pcore(cpu: usize) -> &'static Pcore {
    &PCORES[cpu]
}

/// The running CPU's pcore.
pub fn this_pcore() -> &'static Pcore {
    &PCORES[percpu::current_index()]
}

/// The pcores in service (the APs running [`pcore_loop`]).
pub fn pcores() -> impl Iterator<Item = (usize, &'static Pcore)> {
    PCORES
        .iter()
        .enumerate()
        .filter(|(_, p)| p.in_service.load(Ordering::Acquire))
}

/// Cores that run (or are parked with) a vcore of process `pid`.
pub fn cores_of(pid: usize) -> usize {
    pcores()
        .filter(|(_, p)| p.assigned().is_some_and(|(q, _)| q == pid))
        .count()
}

/// Reserves a free pcore for process `pid` (which vcore runs there is the
/// process's `VcoreSet`'s choice, made next); its index.
pub fn reserve_pcore(pid: usize) -> Option<usize> {
    pcores().find_map(|(cpu, p)| {
        p.assigned
            .compare_exchange(
                FREE,
                encode(pid, RESERVED),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
            .then_some(cpu)
    })
}

/// Gives back a reservation that found no vcore to run.
pub fn unreserve_pcore(cpu: usize, pid: usize) {
    release_pcore(cpu, pid, RESERVED);
}

/// Runs vcore `v` of `pid` on the pcore reserved for it, and wakes it.
pub fn assign_pcore(cpu: usize, pid: usize, v: u32) {
    PCORES[cpu]
        .assigned
        .store(encode(pid, v), Ordering::Release);
    wake_pcore(cpu);
}

/// Frees `cpu` if vcore `v` of `pid` holds it.
pub fn release_pcore(cpu: usize, pid: usize, v: u32) {
    if let Some(p) = PCORES.get(cpu) {
        let _ =
            p.assigned
                .compare_exchange(encode(pid, v), FREE, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// Wakes `cpu` to pick up its new assignment.
pub fn wake_pcore(cpu: usize) {
    lapic::send_ipi(cpu, lapic::WAKE_VECTOR);
}

/// Sends the notification IPI to `cpu`.
pub fn notify_pcore(cpu: usize) {
    lapic::send_ipi(cpu, NOTIFY_VECTOR);
}

/// Interrupts the ring-3 run on `cpu`, so its way back to ring 3 looks at
/// the vcore's state (dying).
pub fn kick_pcore(cpu: usize) {
    lapic::send_ipi(cpu, PREEMPT_VECTOR);
}

/// Bulk-preempts the online vcores `pick` chooses and sends their cores
/// the preemption IPI; how many.
pub fn preempt(
    p: &process::Process,
    pick: impl FnMut(u32) -> bool,
    keep_one: bool,
    due: impl FnMut() -> u64,
) -> usize {
    let cores = p.preempt(pick, keep_one, due);
    for &c in &cores {
        lapic::send_ipi(c, PREEMPT_VECTOR);
    }
    cores.len()
}

/// What an AP does during the scenarios: run the vcore assigned to it,
/// halt when there is none, return when [`stop`] asks.
fn pcore_loop(_: usize) -> usize {
    let pc = this_pcore();
    time::start_tick(TICK_HZ);
    pc.in_service.store(true, Ordering::Release);
    loop {
        // Check and halt with interrupts off, then `sti; hlt` as one step:
        // the wake-up IPI of an assignment made after the check still ends
        // the halt.
        interrupts::disable();
        if let Some((pid, v)) = pc.assigned() {
            run_vcore(pc, process::get(pid), v);
            interrupts::enable();
            continue;
        }
        if pc.exit.load(Ordering::Acquire) {
            interrupts::enable();
            break;
        }
        interrupts::enable_and_hlt();
    }
    pc.in_service.store(false, Ordering::Release);
    address_space::activate_kernel();
    time::stop_tick();
    0
}

/// Runs vcore `v` of `p` on this core, in ring 3, from its vcore entry,
/// until it yields or its process dies; parks while it is preempted.
/// Interrupts off throughout (ring 3 runs with them on).
fn run_vcore(pc: &Pcore, p: &'static Process, v: u32) {
    let cpu = percpu::current_index();
    let Some(vcpd) = p.vcpd(v) else { return };
    // The process's tables from here on, until another process's vcore
    // runs here: kernel code on this core touches this process's memory
    // only (address_space.rs), and a vcore that comes back to the same
    // core (a restart, a new start after a yield) costs no CR3 switch.
    p.space().activate();
    // A fresh start: the vcore context, notifications off, and no uthread
    // to resume (a vcore that yielded left its uthread behind).
    let _ = context::take(&vcpd.uthread_ctx);
    vcpd.notif_disabled.store(true, Ordering::Release);
    if let Some(t) = p.tls(v) {
        t.online_pending.store(1, Ordering::Release);
    }
    let mut next = context::vcore_entry(vcpd, v);
    loop {
        let stop = match next.as_mut() {
            None => trap_stop_bad_entry(p, v),
            Some(frame) => {
                pc.running.store(encode(p.id(), v), Ordering::Release);
                context::load_tls(vcpd);
                let stop = match trap::before_user(p, v, frame) {
                    // SAFETY: `before_user` accepted the frame, which came
                    // from `context` (user selectors, IF set, IOPL 0,
                    // canonical RIP and RSP); the process's tables are
                    // loaded; this is the pcore loop, on the AP's kernel
                    // stack, with interrupts off.
                    Ok(()) => Stop::from_raw(unsafe { ring3::enter_user(frame) }),
                    Err(stop) => stop,
                };
                pc.running.store(FREE, Ordering::Release);
                stop
            }
        };
        match stop {
            Stop::Yielded => return,
            Stop::Dead => {
                release_pcore(cpu, p.id(), v);
                return;
            }
            Stop::Preempted => {
                if !park(pc, p, v, cpu) {
                    release_pcore(cpu, p.id(), v);
                    return;
                }
                // Restarted: the saved context, or the entry if the slot
                // lost it (the process may write its VCPDs).
                next = context::take(&vcpd.vcore_ctx).or_else(|| context::vcore_entry(vcpd, v));
            }
        }
    }
}

fn trap_stop_bad_entry(p: &Process, v: u32) -> Stop {
    crate::process::fault::kill_for(
        p,
        v,
        "its VCPD advertises a non-canonical vcore entry or stack",
    )
}

/// Waits, halted, until vcore `v` is mapped to this core again (`true`)
/// or its process dies (`false`).
fn park(pc: &Pcore, p: &Process, v: u32, cpu: usize) -> bool {
    pc.parks.fetch_add(1, Ordering::Relaxed);
    pc.parked.store(true, Ordering::Release);
    let restarted = loop {
        if p.state() == ProcState::Dying {
            break false;
        }
        if p.vcore_on(v, cpu) {
            break true;
        }
        // The restart wakes us (and the tick would).
        interrupts::enable_and_hlt();
        interrupts::disable();
    };
    pc.parked.store(false, Ordering::Release);
    restarted
}

fn on_notify(_frame: &mut InterruptFrame) {
    let pc = this_pcore();
    pc.notify_tsc.store(time::rdtsc(), Ordering::Relaxed);
    pc.notify_irqs.fetch_add(1, Ordering::Release);
}

fn on_preempt(_frame: &mut InterruptFrame) {
    // Nothing here: the way back to ring 3 (trap.rs) finds the vcore
    // unmapped (saves its context, parks) or its process dying.
}

/// A scheduler policy for one process (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Chaos {
    /// Percent chance per tick of a preemption round.
    pub preempt_percent: u32,
    /// Never preempt the last online vcore (the process stays RUNNING_M).
    pub keep_one: bool,
    /// A preempted vcore is due back after 1..=`max_park_ticks` ticks.
    pub max_park_ticks: u32,
    /// Percent chance per tick of starting the inactive head on a free core.
    pub grant_percent: u32,
}

static CHAOS_PID: AtomicUsize = AtomicUsize::new(usize::MAX);
static CHAOS_PREEMPT: AtomicU32 = AtomicU32::new(0);
static CHAOS_KEEP_ONE: AtomicBool = AtomicBool::new(true);
static CHAOS_PARK: AtomicU32 = AtomicU32::new(1);
static CHAOS_GRANT: AtomicU32 = AtomicU32::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);
static RNG: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);

/// Applies `chaos` to process `pid` from the next tick on.
pub fn set_chaos(pid: usize, chaos: Chaos) {
    CHAOS_PREEMPT.store(chaos.preempt_percent, Ordering::Relaxed);
    CHAOS_KEEP_ONE.store(chaos.keep_one, Ordering::Relaxed);
    CHAOS_PARK.store(chaos.max_park_ticks.max(1), Ordering::Relaxed);
    CHAOS_GRANT.store(chaos.grant_percent, Ordering::Relaxed);
    CHAOS_PID.store(pid, Ordering::Release);
}

/// Stops the policy and restarts every vcore it left preempted.
pub fn clear_chaos() {
    // The policy runs in CPU 0's tick, and so does this (in thread
    // context): no tick is half-way through the policy now, and none acts
    // after the swap.
    let pid = CHAOS_PID.swap(usize::MAX, Ordering::AcqRel);
    if pid != usize::MAX {
        process::get(pid).restart_due(0, true);
    }
}

fn next_random() -> u64 {
    // xorshift64; only CPU 0's tick uses it.
    let mut x = RNG.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    RNG.store(x, Ordering::Relaxed);
    x
}

fn chaos_tick() {
    let pid = CHAOS_PID.load(Ordering::Acquire);
    if pid == usize::MAX {
        return;
    }
    let p = process::get(pid);
    let now = TICKS.fetch_add(1, Ordering::Relaxed) + 1;
    p.restart_due(now, false);
    if next_random() % 100 < u64::from(CHAOS_PREEMPT.load(Ordering::Relaxed)) {
        let park = u64::from(CHAOS_PARK.load(Ordering::Relaxed));
        preempt(
            p,
            |_| next_random() % 2 == 0,
            CHAOS_KEEP_ONE.load(Ordering::Relaxed),
            || now + 1 + next_random() % park,
        );
    }
    if next_random() % 100 < u64::from(CHAOS_GRANT.load(Ordering::Relaxed)) {
        p.grant(1);
    }
}

fn on_tick(cpu: usize, _frame: &mut InterruptFrame) {
    if cpu == 0 {
        chaos_tick();
    }
}

/// Puts every AP in service ([`pcore_loop`]), installs the interrupt
/// handlers and starts the kernel CPU's tick. Returns the number of pcores.
///
/// # Panics
/// If an AP does not take the job (it should be idle).
pub fn start() -> usize {
    idt::register(NOTIFY_VECTOR, on_notify);
    idt::register(PREEMPT_VECTOR, on_preempt);
    time::set_tick_hook(Some(on_tick));
    time::start_tick(TICK_HZ);
    let mut jobs = JOBS.lock();
    for cpu in percpu::online().map(|c| c.index()).filter(|&i| i != 0) {
        let handle = jobs::post(cpu, pcore_loop, 0)
            .unwrap_or_else(|e| panic!("cpu {cpu} refused the pcore loop: {e:?}"));
        jobs.push(handle).expect("at most MAX_CPUS");
    }
    let n = jobs.len();
    drop(jobs);
    let start = time::now_ns();
    while pcores().count() < n {
        assert!(
            time::now_ns() - start < 2_000_000_000,
            "APs did not enter the pcore loop"
        );
        core::hint::spin_loop();
    }
    n
}

/// Takes the APs out of service. Every process must have yielded its
/// cores. Returns `false` if an AP did not return within a second (a vcore
/// still running: a failed scenario).
pub fn stop() -> bool {
    for (_, p) in pcores() {
        p.exit.store(true, Ordering::Release);
    }
    let mut jobs = JOBS.lock();
    for h in jobs.iter() {
        wake_pcore(h.cpu());
    }
    let start = time::now_ns();
    while !jobs.iter().all(JobHandle::is_done) {
        if time::now_ns() - start > 1_000_000_000 {
            return false;
        }
        core::hint::spin_loop();
    }
    while let Some(h) = jobs.pop() {
        h.wait();
    }
    time::stop_tick();
    time::set_tick_hook(None);
    true
}
