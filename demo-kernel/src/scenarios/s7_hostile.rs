//! Scenario 7, hostile process: garbage in its event queues, VCPDs and
//! mailboxes; the kernel keeps running, counts the drops, and writes
//! nothing outside the process's memory.
//!
//! A second MCP, with its own 4 MiB range of the user region and a guard
//! page on each side that belongs to no process. It sets up well-formed
//! queues first (UCQ, CEQ, bitmap, and a slim queue to VCPD mailboxes, all
//! registered in `kernel_evts`), then turns hostile:
//! - its vcores run code that scribbles random values over its own shared
//!   memory and yields at random (never the receive half: in ring 0,
//!   following its garbage pointers would fault);
//! - the scheduler preempts and restarts its vcores at random;
//! - the kernel CPU scribbles too (queue flags and pointers, mailbox type
//!   tags, UCQ and CEQ indices and pages, VCPD flags and `notif_pending`,
//!   `kernel_evts`), choosing values that are most likely to hurt: the
//!   guard pages, a kernel static, the app's procdata, misaligned and
//!   wrapping addresses, indices, all-ones; and between scribbles it sends
//!   events (6 per tick, for at least 1.5 s, 6000 sends, and until each
//!   flag combination was used) through every entry point (`send_event` with each of the
//!   1024 flag combinations plus unknown bits, `send_kernel_event`,
//!   `post_vcore_event`, `send_posix_signal`) with random vcore ids and
//!   message contents.
//!
//! Then the kernel destroys the process (DYING: its vcores stop, later
//! sends are dropped). PASS if every send returned, drops were counted,
//! and the guard pages, the kernel canary and the app's procdata are
//! unchanged. The kernel's warnings are counted rather than printed
//! (klog's quiet mode): thousands, by design.

use core::fmt::Write;
use core::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use event_core::recv::setup::{self, MboxKind};
use event_core::{
    DropKind, VcoreId, post_vcore_event, send_event, send_kernel_event, send_posix_signal,
};
use heapless::Vec;
use spin::Once;
use vcpd_abi::procdata::{kernel_evt_offset, vcpd_offset};
use vcpd_abi::vcpd::ROS_HW_CTX;
use vcpd_abi::{
    CeqEvent, CeqOp, EventMsg, EventQueue, EventQueueBig, EvqFlags, HwTrapframe, MAX_NR_EVENT,
    ProcData, SharedEventMsg, SharedMem, Trapframe, UserAddr, UserMemoryExt, Vcpd,
};

use super::common::{self, ModelSnap, Pacer, Report, Rng, wait_until};
use crate::platform::user_region::PAGE_SIZE;
use crate::platform::{klog, qemu};
use crate::process::sched::{self, Chaos};
use crate::process::{self, Death, Kind, MAX_VCORES, ProcState, Process, Spec, fault, vc};
use crate::user::Rx;
use crate::user::abi::nr;
use crate::user::program::{Step, VcoreProgram};
use crate::user::{runtime, syscall};

/// At least this many hostile sends...
const ROUNDS: u64 = 6000;
/// ...in batches of this many per tick, for at least `MIN_MS` and until
/// every flag combination went through a queue (at most `MAX_MS`).
const BATCH: u64 = 6;
const MIN_MS: u64 = 1500;
const MAX_MS: u64 = 30_000;
/// `ROUNDS` and `MIN_MS` in short mode (every flag combination still).
const ROUNDS_SHORT: u64 = 1000;
const MIN_MS_SHORT: u64 = 300;
const PAGES: usize = 1024;
/// Pages of each attacker process.
const ATTACKER_PAGES: usize = 128;
const GUARD_BYTE: u8 = 0xa5;
const CANARY: u64 = 0x5afe_c0de_5afe_c0de;

/// Kernel memory that a garbage pointer may name: must stay as it is.
static KERNEL_CANARY: [AtomicU64; 64] = [const { AtomicU64::new(CANARY) }; 64];

/// Where the garbage goes: `(user address, length)` of the process's
/// shared structures.
static TARGETS: Once<Vec<(usize, usize), 32>> = Once::new();
/// Interesting values for garbage: guard pages, kernel canary, app
/// procdata, the hostile space's bounds.
static HINTS: Once<[usize; 6]> = Once::new();

/// A value chosen to hurt, from the hints `[guard below, guard above,
/// kernel canary, app procdata, space start, space end]`.
fn garbage(rng: &mut Rng, hints: [usize; 6]) -> u64 {
    let [guard_lo, guard_hi, kernel, app_pd, start, end] = hints;
    let pick =
        |rng: &mut Rng, base: usize, len: usize| (base + rng.below(len as u64) as usize) as u64;
    match rng.below(12) {
        0 => rng.bits(),
        1 => 0,
        2 => u64::MAX,
        3 => rng.below(130),
        4 | 5 => pick(rng, start, end - start) & !7,
        6 => pick(rng, start, end - start),
        7 => pick(rng, guard_lo, PAGE_SIZE) & !7,
        8 => pick(rng, guard_hi, PAGE_SIZE) & !7,
        9 => pick(rng, kernel, 64 * 8) & !7,
        10 => pick(rng, app_pd, size_of::<ProcData>()) & !7,
        // A UCQ-style index: a page of the space and a slot number.
        _ => {
            ((start + rng.below(((end - start) / PAGE_SIZE) as u64) as usize * PAGE_SIZE) as u64)
                | rng.below(140)
        }
    }
}

/// Where one garbage value goes: an address in one of `targets` and a
/// width (1, 4 or 8 bytes, aligned).
fn spot(rng: &mut Rng, targets: &[(usize, usize)]) -> (usize, u32) {
    let (base, len) = targets[rng.below(targets.len() as u64) as usize];
    let off = rng.below(len as u64) as usize;
    match rng.below(4) {
        0 => (base + off, 1),
        1 => ((base + off) & !3, 4),
        _ => ((base + off) & !7, 8),
    }
}

/// Writes `value` (`width` bytes) at `addr`, if `at` finds the address.
fn write_garbage(
    addr: usize,
    width: u32,
    value: u64,
    at8: impl Fn(usize) -> Option<&'static AtomicU8>,
    at32: impl Fn(usize) -> Option<&'static AtomicI32>,
    at64: impl Fn(usize) -> Option<&'static AtomicU64>,
) {
    match width {
        1 => {
            if let Some(b) = at8(addr) {
                b.store(value as u8, Ordering::Relaxed);
            }
        }
        4 => {
            if let Some(w) = at32(addr) {
                w.store(value as i32, Ordering::Relaxed);
            }
        }
        _ => {
            if let Some(w) = at64(addr) {
                w.store(value, Ordering::Relaxed);
            }
        }
    }
}

/// The kernel CPU writes one garbage value somewhere in the process's
/// shared structures (through the checked translation).
fn scribble(p: &'static Process, rng: &mut Rng) {
    let targets = TARGETS.get().expect("set up");
    let hints = *HINTS.get().expect("set up");
    let (addr, width) = spot(rng, targets);
    let value = garbage(rng, hints);
    write_garbage(
        addr,
        width,
        value,
        |a| p.user_ref(a),
        |a| p.user_ref(a),
        |a| p.user_ref(a),
    );
}

/// The hostile process's instructions, in its own memory: the kernel's
/// scenario code writes them (as its main thread would), its vcores read
/// them in ring 3, and write back what their malformed calls got.
#[repr(C)]
struct Orders {
    /// [`SCRIBBLE`], or the attack to make.
    attack: AtomicU32,
    n_targets: AtomicUsize,
    targets: [[AtomicUsize; 2]; 32],
    hints: [AtomicUsize; 6],
    /// Addresses the attacks use: a kernel static, a kernel function that
    /// starts with a privileged instruction, the app's procdata, the SCP's.
    kernel_data: AtomicUsize,
    kernel_fn: AtomicUsize,
    app_page: AtomicUsize,
    scp_page: AtomicUsize,
    /// A message in the process's own memory, for `SEND_EVENT`.
    msg: SharedEventMsg,
    /// Malformed system calls made, and how many the kernel refused.
    bad_calls: AtomicU64,
    refused: AtomicU64,
    /// Set if an attack did not fault (it must).
    survived: AtomicU32,
}

// SAFETY: a `repr(C)` struct of atomics (and `SharedEventMsg`, itself
// `SharedMem`): any bytes are valid, shared references stay sound.
unsafe impl SharedMem for Orders {}

/// [`Orders::attack`]: no attack yet; scribble.
const SCRIBBLE: u32 = 0;
/// The attack that ends the hostile process.
const WRITE_KERNEL: u32 = 1;

/// The attacks, each with the fault vectors it may cause (empty: it
/// exits). An `int $0x50` from ring 3 is a #GP on hardware and TCG (the
/// gate's DPL is 0); the project's KVM (PVM) reflects it as #UD.
const ATTACKS: [(u32, &str, &[u8]); 12] = [
    (WRITE_KERNEL, "write kernel data", &[14]),
    (2, "read kernel data", &[14]),
    (3, "write the app's procdata", &[14]),
    (4, "read the SCP's procdata", &[14]),
    (5, "write its own guard page", &[14]),
    (6, "write kernel text", &[14]),
    (7, "jump into kernel data", &[14]),
    (8, "jump into a kernel function", &[13]),
    (9, "mov to CR3", &[13]),
    (10, "int $0x50", &[13, 6]),
    (11, "resume a forged ring-0 context", &[13]),
    (12, "malformed calls, then EXIT", &[]),
];

/// Ring 3: the hostile process's orders.
fn orders() -> Option<&'static Orders> {
    runtime::own::<Orders>(runtime::proc_block().arg.load(Ordering::Relaxed))
}

/// Ring 3: a malformed system call (one the kernel must refuse); counted in
/// the orders.
fn malformed_call(o: &Orders, rng: &mut Rng, hints: [usize; 6]) {
    let msg = core::ptr::from_ref(&o.msg).expose_provenance() as u64;
    let kernel = o.kernel_data.load(Ordering::Relaxed) as u64;
    let r = match rng.below(6) {
        0 => syscall::raw(100 + rng.below(1 << 20), rng.bits(), rng.bits(), rng.bits()),
        // The message elsewhere than its memory: a kernel static, another
        // process's procdata, garbage.
        1 => syscall::raw(nr::SEND_EVENT, rng.bits(), kernel, 0),
        2 => syscall::raw(nr::SEND_EVENT, rng.bits(), hints[3] as u64, 0),
        // Its message to a queue of another process, or a vcore id out of
        // range.
        3 => {
            let vcoreid = if rng.below(2) == 0 { 1 << 32 } else { 64 };
            syscall::raw(nr::SEND_EVENT, hints[3] as u64, msg, vcoreid)
        }
        // Free a kernel page, or its own pinned procdata.
        4 => {
            let page = if rng.below(2) == 0 {
                kernel & !0xfff
            } else {
                runtime::proc_block().procdata.load(Ordering::Relaxed) as u64
            };
            syscall::raw(nr::PAGE_FREE, page, 0, 0)
        }
        _ => syscall::raw(nr::WAKE_VCORE, 64 + rng.below(1 << 20), 0, 0),
    };
    o.bad_calls.fetch_add(1, Ordering::Relaxed);
    let refused = crate::user::abi::Errno::decode(r).is_some();
    o.refused.fetch_add(u64::from(refused), Ordering::Relaxed);
}

/// Ring 3: the hostile vcores: scribble, make malformed calls, sometimes
/// yield, never receive; attack when the orders say so.
struct Hostile;

impl VcoreProgram for Hostile {
    fn step(&self, _: &Rx, _: u32) -> Step {
        let Some(o) = orders() else {
            return Step::Idle;
        };
        let attack = o.attack.load(Ordering::Acquire);
        if attack != SCRIBBLE {
            self::attack(o, attack);
        }
        let tls = runtime::tls();
        let mut rng = Rng::new(tls.rng.load(Ordering::Relaxed) ^ runtime::rdtsc());
        let hints = o.hints.each_ref().map(|h| h.load(Ordering::Relaxed));
        let n = o.n_targets.load(Ordering::Relaxed).min(o.targets.len());
        let mut targets = Vec::<(usize, usize), 32>::new();
        for t in &o.targets[..n] {
            let _ = targets.push((t[0].load(Ordering::Relaxed), t[1].load(Ordering::Relaxed)));
        }
        for _ in 0..1 + rng.below(3) {
            if targets.is_empty() {
                break;
            }
            let (addr, width) = spot(&mut rng, &targets);
            let value = garbage(&mut rng, hints);
            write_garbage(addr, width, value, runtime::own, runtime::own, runtime::own);
        }
        if rng.below(4) == 0 {
            malformed_call(o, &mut rng, hints);
        }
        tls.rng.store(rng.bits(), Ordering::Relaxed);
        if rng.below(20) == 0 {
            Step::Yield
        } else {
            Step::Idle
        }
    }
}

static HOSTILE: &dyn VcoreProgram = &Hostile;

/// Ring 3: makes attack `k`. Each one faults (or, the last, exits): if it
/// ever goes on, that is recorded and the process exits.
fn attack(o: &Orders, k: u32) -> ! {
    let kernel_data = o.kernel_data.load(Ordering::Relaxed);
    let kernel_fn = o.kernel_fn.load(Ordering::Relaxed);
    let at = |a: usize| core::ptr::with_exposed_provenance_mut::<u64>(a);
    // SAFETY (every `unsafe` below): not sound, on purpose: each access or
    // jump faults in ring 3 before it has any effect (the page is
    // supervisor-only or not mapped, the instruction privileged), and the
    // kernel kills this process. That is what the scenario checks.
    match k {
        // SAFETY: see above.
        WRITE_KERNEL => unsafe { at(kernel_data).write_volatile(0xbad) },
        2 => {
            // SAFETY: see above.
            let _ = unsafe { at(kernel_data).read_volatile() };
        }
        // SAFETY: see above.
        3 => unsafe { at(o.app_page.load(Ordering::Relaxed)).write_volatile(0xbad) },
        4 => {
            // SAFETY: see above.
            let _ = unsafe { at(o.scp_page.load(Ordering::Relaxed)).read_volatile() };
        }
        // SAFETY: see above.
        5 => unsafe { at(o.hints[1].load(Ordering::Relaxed)).write_volatile(0xbad) },
        // SAFETY: see above.
        6 => unsafe { at(kernel_fn).write_volatile(0xbad) },
        7 => {
            // SAFETY: see above.
            let f = unsafe { core::mem::transmute::<usize, extern "C" fn()>(kernel_data) };
            f();
        }
        8 => {
            // SAFETY: see above.
            let f = unsafe { core::mem::transmute::<usize, extern "C" fn()>(kernel_fn) };
            f();
        }
        // SAFETY: see above.
        9 => unsafe {
            core::arch::asm!("mov %rax, %cr3", in("rax") 0u64, options(att_syntax, nostack));
        },
        // SAFETY: see above.
        10 => unsafe { core::arch::asm!("int $0x50", options(att_syntax, nostack)) },
        11 => {
            // A context claiming ring 0 (CS 0x08), I/O privilege (IOPL 3)
            // and interrupts off, for the kernel's POP_UTHREAD to resume:
            // it must come back as ring 3 with IOPL 0, and its first
            // instruction (the `cli` of the kernel's `halt_forever`) fault.
            let vcpd: &Vcpd = runtime::vcpd(runtime::vcore_id());
            let sp: u64;
            // SAFETY: only reads the stack pointer.
            unsafe { core::arch::asm!("mov %rsp, {}", out(reg) sp, options(att_syntax, nostack)) };
            let hw = HwTrapframe {
                rip: kernel_fn as u64,
                cs: 0x08,
                ss: 0x10,
                rflags: 0x3002,
                rsp: sp & !0xf,
                ..HwTrapframe::default()
            };
            vcpd.uthread_ctx.tf.write(Trapframe::from_hw(hw));
            vcpd.uthread_ctx
                .ctx_type
                .store(ROS_HW_CTX, Ordering::Release);
            syscall::raw(nr::POP_UTHREAD, 0, 0, 0);
        }
        12 => {
            let hints = o.hints.each_ref().map(|h| h.load(Ordering::Relaxed));
            let mut rng = Rng::new(0x03a1_ca11 ^ runtime::rdtsc());
            for _ in 0..64 {
                malformed_call(o, &mut rng, hints);
            }
            syscall::exit();
        }
        _ => {}
    }
    o.survived.store(k, Ordering::Release);
    syscall::exit()
}

/// The address a page-fault attack must name.
fn expected_addr(o: &Orders, k: u32) -> Option<u64> {
    let r = |a: &AtomicUsize| a.load(Ordering::Relaxed) as u64;
    Some(match k {
        1 | 2 | 7 => r(&o.kernel_data),
        3 => r(&o.app_page),
        4 => r(&o.scp_page),
        5 => r(&o.hints[1]),
        6 => r(&o.kernel_fn),
        _ => return None,
    })
}

/// Sets the process's queues up (well-formed, before it turns hostile);
/// the queue addresses.
fn set_up(p: &'static Process) -> Option<[usize; 4]> {
    let rt = p.runtime();
    let ucq = rt.alloc::<EventQueueBig>()?;
    let ceq = rt.alloc::<EventQueueBig>()?;
    let bitmap = rt.alloc::<EventQueueBig>()?;
    let slim = rt.alloc::<EventQueue>()?;
    let events = rt.alloc_slice::<CeqEvent>(16)?;
    let ring = rt.alloc_slice::<AtomicI32>(8)?;
    let flags = EvqFlags::IPI | EvqFlags::INDIR;
    setup::init_big_evq(ucq, MboxKind::Ucq, flags, VcoreId::ZERO, rt).ok()?;
    let kind = MboxKind::Ceq {
        op: CeqOp::Add,
        events,
        ring,
    };
    setup::init_big_evq(ceq, kind, flags, VcoreId::ZERO, rt).ok()?;
    setup::init_big_evq(bitmap, MboxKind::Bitmap, flags, VcoreId::ZERO, rt).ok()?;
    setup::init_evq(slim, UserAddr::NULL, EvqFlags::SPAM_PUBLIC, VcoreId::ZERO).ok()?;
    let addr = |q: &EventQueue| core::ptr::from_ref(q).expose_provenance();
    let qs = [
        addr(&ucq.evq),
        addr(&ceq.evq),
        addr(&bitmap.evq),
        addr(slim),
    ];
    let rx = p.setup_receiver();
    for t in 0..MAX_NR_EVENT as u16 {
        rx.enable_kevent(t, UserAddr::new(qs[usize::from(t) % qs.len()]))
            .ok()?;
    }

    let mut targets: Vec<(usize, usize), 32> = Vec::new();
    for &q in &qs[..3] {
        let _ = targets.push((q, size_of::<EventQueueBig>()));
    }
    let _ = targets.push((qs[3], size_of::<EventQueue>()));
    let pd = p.procdata_addr();
    let _ = targets.push((pd + kernel_evt_offset(0), MAX_NR_EVENT * 8));
    for v in 0..p.nr_vcores() as usize + 1 {
        // From `flags` to the end: flags, notif_*, both mailboxes.
        let start = core::mem::offset_of!(Vcpd, flags);
        let _ = targets.push((pd + vcpd_offset(v) + start, size_of::<Vcpd>() - start));
    }
    let _ = targets.push((
        events.as_ptr().expose_provenance(),
        16 * size_of::<CeqEvent>(),
    ));
    let _ = targets.push((ring.as_ptr().expose_provenance(), 8 * 4));
    // The UCQ's current page, and the VCPD 0 public mailbox's.
    for ucq_idx in [
        ucq.ev_imbox.as_ucq().prod_idx.load(Ordering::Relaxed),
        p.procdata().vcpd[0]
            .ev_mbox_public
            .as_ucq()
            .prod_idx
            .load(Ordering::Relaxed),
    ] {
        let _ = targets.push((ucq_idx & !(PAGE_SIZE - 1), PAGE_SIZE));
    }
    TARGETS.call_once(|| targets);
    Some(qs)
}

/// FNV-1a over `len` bytes of memory at `addr`, read as words.
fn checksum(p: &Process, addr: usize, len: usize) -> u64 {
    (0..len / 8)
        .filter_map(|i| p.user_ref::<AtomicU64>(addr + i * 8))
        .fold(0xcbf2_9ce4_8422_2325, |h, w| {
            (h ^ w.load(Ordering::Relaxed)).wrapping_mul(0x100_0000_01b3)
        })
}

fn guard_bytes(addr: usize) -> &'static [AtomicU8] {
    // SAFETY: a guard page is a page of the user region reserved for no
    // process (uspace.rs): identity-mapped RAM that nothing else uses;
    // `AtomicU8` is valid for any byte and allows the shared access.
    unsafe {
        core::slice::from_raw_parts(
            core::ptr::with_exposed_provenance::<AtomicU8>(addr),
            PAGE_SIZE,
        )
    }
}

/// Fills a hostile process's orders (in its memory) and points its
/// process block at them; the orders.
fn give_orders(p: &'static Process, attack: u32) -> Option<&'static Orders> {
    let o = p.runtime().alloc::<Orders>()?;
    let space = p.space().range();
    let guards = p.guard_pages();
    let hints = [
        guards[0],
        guards[1],
        KERNEL_CANARY.as_ptr().expose_provenance(),
        super::app().procdata_addr(),
        space.start,
        space.end,
    ];
    let r = Ordering::Relaxed;
    for (h, v) in o.hints.iter().zip(hints) {
        h.store(v, r);
    }
    if let Some(targets) = TARGETS.get().filter(|_| p.id() == super::HOSTILE) {
        for (t, &(addr, len)) in o.targets.iter().zip(targets) {
            t[0].store(addr, r);
            t[1].store(len, r);
        }
        o.n_targets.store(targets.len().min(o.targets.len()), r);
    }
    o.kernel_data
        .store(KERNEL_CANARY.as_ptr().expose_provenance(), r);
    o.kernel_fn
        .store(qemu::halt_forever as *const () as usize, r);
    o.app_page.store(super::app().procdata_addr(), r);
    o.scp_page.store(
        process::all()
            .find(|q| q.id() == super::SCP)
            .map_or(0, Process::procdata_addr),
        r,
    );
    o.msg.write(&EventMsg::new(1));
    o.attack.store(attack, Ordering::Release);
    p.block().arg.store(
        core::ptr::from_ref(o).expose_provenance(),
        Ordering::Release,
    );
    Some(o)
}

/// Whether `p` died as attack `k` must make it: of its fault (the vector,
/// and for a page fault the address), or by exiting with every malformed
/// call refused.
fn died_as_expected(p: &Process, o: &Orders, k: u32, vectors: &[u8]) -> bool {
    match p.death() {
        Some(Death::Fault {
            vector: v, addr, ..
        }) => vectors.contains(&v) && expected_addr(o, k).is_none_or(|a| a == addr),
        Some(Death::Exit) => {
            vectors.is_empty()
                && o.bad_calls.load(Ordering::Relaxed) > 0
                && o.refused.load(Ordering::Relaxed) == o.bad_calls.load(Ordering::Relaxed)
        }
        _ => false,
    }
}

/// Runs attack `k` (with the vector it must cause) in a fresh hostile
/// process, and waits until it is dead and its core free; how it died.
fn run_attacker(pid: usize, name: &'static str, k: u32, vectors: &[u8]) -> (bool, Option<Death>) {
    let p = process::create(
        pid,
        Spec {
            name,
            kind: Kind::Hostile,
            mcp: false,
            vcores: 1,
            pages: ATTACKER_PAGES,
            guarded: true,
        },
    );
    let Some(o) = give_orders(p, k) else {
        return (false, None);
    };
    common::begin(p, &HOSTILE);
    let dead = wait_until(2_000, || {
        p.state() == ProcState::Dying && sched::cores_of(p.id()) == 0
    });
    (dead && died_as_expected(p, o, k, vectors), p.death())
}

/// Runs the scenario.
pub(super) fn run(r: &mut Report) {
    let n = super::app().nr_vcores();
    let p = process::create(
        super::HOSTILE,
        Spec {
            name: "hostile",
            kind: Kind::Hostile,
            mcp: true,
            vcores: n,
            pages: PAGES,
            guarded: true,
        },
    );
    let app = super::app();
    let space = p.space().range();
    let guards = p.guard_pages();
    let hints = *HINTS.call_once(|| {
        [
            guards[0],
            guards[1],
            KERNEL_CANARY.as_ptr().expose_provenance(),
            app.procdata_addr(),
            space.start,
            space.end,
        ]
    });
    let Some(qs) = set_up(p) else {
        return r.check(false, "queue set-up failed");
    };
    let Some(orders) = give_orders(p, SCRIBBLE) else {
        return r.check(false, "out of process memory");
    };
    for g in guards {
        for b in guard_bytes(g) {
            b.store(GUARD_BYTE, Ordering::Relaxed);
        }
    }
    let app_sum = checksum(app, app.procdata_addr(), size_of::<ProcData>());
    let text = qemu::halt_forever as *const () as usize as *const u64;
    // SAFETY: kernel text, mapped readable in the kernel's tables; read
    // volatile so the comparison at the end reads it again.
    let text_before = unsafe { text.read_volatile() };

    let seed = 0x0bad_cafe_u64;
    let mut rng = Rng::new(seed);
    let stats = p.stats();
    let drops_before = stats.total_drops();
    let model_before = ModelSnap::take(p);
    let _ = klog::set_quiet(true);
    common::begin(p, &HOSTILE);
    sched::set_chaos(
        p.id(),
        Chaos {
            preempt_percent: 10,
            keep_one: false,
            max_park_ticks: 3,
            grant_percent: 30,
        },
    );
    let mut returned = 0u64;
    let mut combos = 0u64;
    let pacer = Pacer::new(super::scaled(MIN_MS, MIN_MS_SHORT), MAX_MS);
    let rounds = super::scaled(ROUNDS, ROUNDS_SHORT);
    let mut i = 0u64;
    loop {
        if i % BATCH == 0 && i > 0 && !pacer.next(i >= rounds && combos >= 1024) {
            break;
        }
        i += 1;
        for _ in 0..1 + rng.below(3) {
            scribble(p, &mut rng);
        }
        let msg = EventMsg {
            ev_type: if rng.below(2) == 0 {
                rng.below(MAX_NR_EVENT as u64) as u16
            } else {
                rng.bits() as u16
            },
            ev_arg1: rng.bits() as u16,
            ev_arg2: rng.bits() as u32,
            ev_arg3: garbage(&mut rng, hints) as usize,
            ev_arg4: rng.bits(),
        };
        // The kernel's suggestion is a `VcoreId` (below MAX_NUM_VCORES by
        // type); ids past the process's own vcores are still refused.
        let vcoreid = match rng.below(4) {
            0 => rng.below(vcpd_abi::MAX_NUM_VCORES as u64) as u32,
            1 => n + rng.below(4) as u32,
            _ => rng.below(u64::from(n)) as u32,
        };
        match rng.below(8) {
            0..=4 => {
                // Each flag combination in turn (plus unknown bits now and
                // then), written into a queue the kernel then uses; or a
                // garbage queue pointer.
                let q = if rng.below(5) == 0 {
                    garbage(&mut rng, hints) as usize
                } else {
                    let q = qs[rng.below(4) as usize];
                    let mut flags = (combos % 1024) as i32;
                    combos += 1;
                    if rng.below(8) == 0 {
                        flags |= rng.bits() as i32 & !0x3ff;
                    }
                    if let Some(evq) = p.user_ref::<EventQueue>(q) {
                        evq.ev_flags.store(flags, Ordering::Relaxed);
                    }
                    q
                };
                let _ = send_event(p, UserAddr::new(q), &msg, vc(vcoreid));
            }
            5 => {
                let _ = send_kernel_event(p, &msg, vc(vcoreid));
            }
            6 => {
                let flags = EvqFlags::from_raw(rng.bits() as i32);
                let _ = post_vcore_event(p, &msg, vc(vcoreid), flags);
            }
            _ => {
                let _ = send_posix_signal(p, rng.bits() as u16);
            }
        }
        returned += 1;
    }
    sched::clear_chaos();
    let sends_ms = pacer.elapsed_ms();
    let bad_calls = orders.bad_calls.load(Ordering::Relaxed);
    let refused = orders.refused.load(Ordering::Relaxed);
    let survived_phase1 = p.state() != ProcState::Dying;
    // The end: its vcores write kernel memory. Every vcore on a core again
    // (some yielded), so one of them attacks at once.
    orders.attack.store(WRITE_KERNEL, Ordering::Release);
    p.grant(MAX_VCORES);
    let killed = wait_until(2_000, || p.state() == ProcState::Dying);
    let dying_before = stats.drops(DropKind::Dying);
    for _ in 0..20 {
        let _ = send_event(p, UserAddr::new(qs[0]), &EventMsg::new(1), VcoreId::ZERO);
    }
    let dying = stats.drops(DropKind::Dying) - dying_before;
    let released = wait_until(2_000, || sched::cores_of(p.id()) == 0);
    let muted = klog::set_quiet(false);
    let m = ModelSnap::take(p).since(model_before);
    let hostile_ok = killed && died_as_expected(p, orders, WRITE_KERNEL, &[14]);

    // Every other attack, in a fresh hostile process each.
    let mut attacks_ok = 0;
    let mut faults = [0u32; 32]; // by vector
    let mut failed_attack: Option<&str> = None;
    let mut count = |d: Option<Death>| {
        if let Some(Death::Fault { vector, .. }) = d {
            faults[usize::from(vector % 32)] += 1;
        }
    };
    count(p.death());
    for (i, &(k, name, vectors)) in ATTACKS.iter().enumerate().skip(1) {
        let pid = super::FIRST_ATTACKER + i - 1;
        let (ok, death) = run_attacker(pid, ATTACKER_NAMES[i], k, vectors);
        count(death);
        if ok {
            attacks_ok += 1;
        } else if failed_attack.is_none() {
            failed_attack = Some(name);
        }
    }

    let guards_ok = guards.iter().all(|&g| {
        guard_bytes(g)
            .iter()
            .all(|b| b.load(Ordering::Relaxed) == GUARD_BYTE)
    });
    let canary_ok = KERNEL_CANARY
        .iter()
        .all(|w| w.load(Ordering::Relaxed) == CANARY);
    // SAFETY: as above.
    let text_ok = unsafe { text.read_volatile() } == text_before;
    let app_ok = checksum(app, app.procdata_addr(), size_of::<ProcData>()) == app_sum;
    let drops = stats.total_drops() - drops_before;
    let _ = write!(
        r,
        "seed {seed:#x}: {i} hostile sends in {sends_ms} ms ({combos} through queues with each \
         of the 1024 flag combinations in turn), {returned} returned, {drops} drops ("
    );
    let mut first = true;
    for k in DropKind::ALL {
        let d = stats.drops(k);
        if d > 0 {
            let _ = write!(r, "{}{k:?} {d}", if first { "" } else { ", " });
            first = false;
        }
    }
    let _ = write!(
        r,
        "), {muted} warnings counted not printed; its vcores in ring 3: {} yields, {} preempted, \
         {} started, {refused}/{bad_calls} malformed system calls refused; then they wrote \
         kernel memory: hostile killed by ",
        m.yields, m.preemptions, m.starts,
    );
    match p.death() {
        Some(d @ Death::Fault { .. }) => {
            let _ = fault::describe(r, p, &d);
            let _ = write!(
                r,
                " (its vcores faulted {} times before they stopped)",
                p.counters.faults.load(Ordering::Relaxed)
            );
        }
        d => {
            let _ = write!(r, "{d:?} (not a fault)");
        }
    }
    let _ = write!(
        r,
        "; after DYING {dying}/20 sends dropped; each other attack in a fresh hostile process: \
         {attacks_ok}/{} died of the fault it must cause (or exited, all its malformed calls \
         refused); faults that killed hostile processes: {} (#PF {}, #GP {}{}); guard pages \
         intact {guards_ok}, kernel canary intact {canary_ok}, kernel text intact {text_ok}, app \
         procdata unchanged {app_ok}; pages used {}/{PAGES}",
        ATTACKS.len() - 1,
        faults.iter().sum::<u32>(),
        faults[14],
        faults[13],
        if faults[6] > 0 { ", #UD 1" } else { "" },
        p.space().used_pages()
    );
    r.check(returned == i, "a send did not return");
    r.check(combos >= 1024, "not every flag combination was sent");
    r.check(drops > 0, "no drop was counted");
    r.check(
        survived_phase1,
        "the hostile process died before its attack",
    );
    r.check(
        bad_calls > 0 && refused == bad_calls,
        "a malformed system call was not refused",
    );
    r.check(
        hostile_ok,
        "the hostile process did not die of its page fault",
    );
    r.check(dying == 20, "sends to a dying process were not dropped");
    r.check(released, "the dead process's cores were not released");
    r.check(
        attacks_ok == ATTACKS.len() - 1,
        failed_attack.unwrap_or("an attack did not end as it must"),
    );
    r.check(guards_ok, "a guard page next to the process changed");
    r.check(canary_ok, "kernel memory changed");
    r.check(text_ok, "kernel text changed");
    r.check(app_ok, "another process's memory changed");
}

/// The attackers' names (index as in [`ATTACKS`]; 0 is the hostile
/// process itself).
const ATTACKER_NAMES: [&str; 12] = [
    "hostile",
    "attacker-read-kernel",
    "attacker-write-app",
    "attacker-read-scp",
    "attacker-write-guard",
    "attacker-write-text",
    "attacker-jump-data",
    "attacker-jump-kernel-fn",
    "attacker-mov-cr3",
    "attacker-int-0x50",
    "attacker-forged-ctx",
    "attacker-bad-calls-exit",
];
