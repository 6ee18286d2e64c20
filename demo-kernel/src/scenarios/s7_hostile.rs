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

use crate::process::vc;
use core::fmt::Write;
use core::sync::atomic::{AtomicI32, AtomicU8, AtomicU64, Ordering};
use event_core::VcoreId;
use vcpd_abi::UserAddr;

use event_core::recv::setup::{self, MboxKind};
use event_core::{DropKind, post_vcore_event, send_event, send_kernel_event, send_posix_signal};
use heapless::Vec;
use spin::Once;
use vcpd_abi::procdata::{kernel_evt_offset, vcpd_offset};
use vcpd_abi::{
    CeqEvent, CeqOp, EventMsg, EventQueue, EventQueueBig, EvqFlags, MAX_NR_EVENT, ProcData,
    UserMemoryExt, Vcpd,
};

use super::common::{self, ModelSnap, Pacer, Report, Rng, wait_until};
use crate::klog;
use crate::process::{self, Kind, Process, Rx, Spec};
use crate::sched::{self, Chaos};
use crate::user_region::PAGE_SIZE;
use crate::vcore::{Step, VcoreProgram};

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
static VCORE_RNG: AtomicU64 = AtomicU64::new(0xbad_5eed);

/// A value chosen to hurt.
fn garbage(rng: &mut Rng) -> u64 {
    let [guard_lo, guard_hi, kernel, app_pd, start, end] = *HINTS.get().expect("set up");
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

/// Writes one garbage value somewhere in the process's shared structures,
/// as the process (its own memory, through the checked translation).
fn scribble(p: &Process, rng: &mut Rng) {
    let targets = TARGETS.get().expect("set up");
    let (base, len) = targets[rng.below(targets.len() as u64) as usize];
    let off = rng.below(len as u64) as usize;
    let value = garbage(rng);
    match rng.below(4) {
        0 => {
            if let Some(b) = p.user_ref::<AtomicU8>(base + off) {
                b.store(value as u8, Ordering::Relaxed);
            }
        }
        1 => {
            if let Some(w) = p.user_ref::<AtomicI32>((base + off) & !3) {
                w.store(value as i32, Ordering::Relaxed);
            }
        }
        _ => {
            if let Some(w) = p.user_ref::<AtomicU64>((base + off) & !7) {
                w.store(value, Ordering::Relaxed);
            }
        }
    }
}

/// The hostile vcores: scribble, sometimes yield, never receive.
struct Hostile;

impl VcoreProgram for Hostile {
    fn step(&self, _: &Rx, v: u32) -> Step {
        let Some((p, _)) = crate::vcore::current() else {
            return Step::Idle;
        };
        let seed = VCORE_RNG.fetch_add(0x9e37_79b9 + u64::from(v), Ordering::Relaxed);
        let mut rng = Rng::new(seed);
        for _ in 0..1 + rng.below(3) {
            scribble(p, &mut rng);
        }
        if rng.below(20) == 0 {
            Step::Yield
        } else {
            Step::Idle
        }
    }
}

static HOSTILE: Hostile = Hostile;

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
    let rx = p.receiver();
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
    HINTS.call_once(|| {
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
    for g in guards {
        for b in guard_bytes(g) {
            b.store(GUARD_BYTE, Ordering::Relaxed);
        }
    }
    let app_sum = checksum(app, app.procdata_addr(), size_of::<ProcData>());

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
            ev_arg3: garbage(&mut rng) as usize,
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
                    garbage(&mut rng) as usize
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
    p.destroy();
    let dying_before = stats.drops(DropKind::Dying);
    for _ in 0..20 {
        let _ = send_event(p, UserAddr::new(qs[0]), &EventMsg::new(1), VcoreId::ZERO);
    }
    let dying = stats.drops(DropKind::Dying) - dying_before;
    let released = wait_until(2_000, || sched::cores_of(p.id()) == 0);
    let muted = klog::set_quiet(false);
    let m = ModelSnap::take(p).since(model_before);

    let guards_ok = guards.iter().all(|&g| {
        guard_bytes(g)
            .iter()
            .all(|b| b.load(Ordering::Relaxed) == GUARD_BYTE)
    });
    let canary_ok = KERNEL_CANARY
        .iter()
        .all(|w| w.load(Ordering::Relaxed) == CANARY);
    let app_ok = checksum(app, app.procdata_addr(), size_of::<ProcData>()) == app_sum;
    let drops = stats.total_drops() - drops_before;
    let _ = write!(
        r,
        "seed {seed:#x}: {i} hostile sends in {} ms ({combos} through queues with each of \
         the 1024 flag combinations in turn), {returned} returned, {drops} drops (",
        pacer.elapsed_ms()
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
        "), {muted} warnings counted not printed; its vcores: {} yields, {} preempted, {} started; \
         after DYING {dying}/20 sends dropped; guard pages intact {guards_ok}, kernel canary \
         intact {canary_ok}, app procdata unchanged {app_ok}; pages used {}/{PAGES}",
        m.yields,
        m.preemptions,
        m.starts,
        p.space().used_pages()
    );
    r.check(returned == i, "a send did not return");
    r.check(combos >= 1024, "not every flag combination was sent");
    r.check(drops > 0, "no drop was counted");
    r.check(dying == 20, "sends to a dying process were not dropped");
    r.check(released, "the dead process's cores were not released");
    r.check(guards_ok, "a guard page next to the process changed");
    r.check(canary_ok, "kernel memory changed");
    r.check(app_ok, "another process's memory changed");
}
