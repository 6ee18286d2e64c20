//! Scenario 8, IPI latency: TSC cycles from a kernel send to the vcore,
//! over 2000 sends: min / median / p99, twice: to the kernel's
//! notification handler (the bare IPI), and to the first instruction of
//! the vcore entry in ring 3 (the whole notification, Akaros-style).
//!
//! The app's vcores sit idle (halted in the `HALT` system call, with
//! notifications enabled; the kernel CPU waits for that before each send).
//! The kernel CPU reads the TSC, then
//! `post_vcore_event` with `IPI | VCORE_PRIVATE` to one vcore (the real
//! send path: post into its private VCPD mailbox, set `notif_pending`,
//! `ProcOps::ipi`). On the vcore's core the notification handler records
//! the TSC; on the way back to ring 3 the kernel finds the notification
//! pending and enabled, saves the vcore's context in its VCPD and enters
//! the vcore entry, whose first instruction reads the TSC into the vcore's
//! TLS block; the entry then handles the message and pops the saved
//! context. The differences are the latencies (under TCG they measure the
//! emulator, not hardware: printed, not judged). The entry also records
//! the CS it runs with: the line reports it (RPL 3: ring 3). A vcore the
//! tick woke may be in a program step (notifications off) when a send
//! comes: the sender then sends no IPI and the vcore finds the message
//! itself; such sends are counted, not timed. PASS if every notification
//! reached the vcore entry (most of them by an IPI), every message was
//! then handled by its vcore, and every vcore entry ran at CPL 3.

use core::fmt::Write;
use core::sync::atomic::Ordering;

use event_core::{VcoreId, post_vcore_event};
use spin::Mutex;
use vcpd_abi::{EventMsg, EvqFlags};

use super::common::{self, Report, TALLY_A, wait_until};
use crate::platform::time;
use crate::process::sched;
use crate::process::vc;
use crate::user::Recv;
use crate::user::program as vcore;

const N: usize = 2000;
/// Sends in short mode.
const N_SHORT: usize = 500;
const T_PING: u16 = 37;

/// Send-to-handler and send-to-entry cycles per send.
static SAMPLES: Mutex<[[u64; N]; 2]> = Mutex::new([[0; N]; 2]);

/// Ring 3 (a handler).
fn on_ping(_: &Recv<'_>, v: VcoreId, msg: &EventMsg, _: usize) {
    let v = v.get();
    TALLY_A.record(v, msg.ev_arg4);
}

/// (min, median, p99) of `got`, sorted in place.
fn stats(got: &mut [u64]) -> (u64, u64, u64) {
    got.sort_unstable();
    let pick = |q: usize| {
        got.get((got.len() * q / 100).min(got.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    (got.first().copied().unwrap_or(0), pick(50), pick(99))
}

/// Runs the scenario.
pub(super) fn run(r: &mut Report) {
    let p = super::app();
    let n_vc = p.nr_vcores();
    let n = super::scaled(N as u64, N_SHORT as u64) as usize;
    common::reset_tallies();
    let reg = common::register(p, T_PING, on_ping, 0);
    if !reg.ok() {
        return r.check(false, "handler registration failed");
    }
    common::begin(p, &vcore::IDLE);
    let started = wait_until(2_000, || (0..n_vc).all(|v| p.vcore_mapped(v)));
    let mut samples = SAMPLES.lock();
    let [irq, entry] = &mut *samples;
    let mut arrived = 0;
    let mut timed = 0;
    let mut send_errors = 0;
    for i in 0..n {
        let v = i as u32 % n_vc;
        let (Some(cpu), Some(tls)) = (p.vcore_pcore(v), p.tls(v)) else {
            break;
        };
        let pc = sched::pcore(cpu);
        // The vcore idle: halted, notifications enabled (not still in the
        // entry of the previous send, whose drain would take this message
        // along without an upcall of its own).
        if !wait_until(1_000, || pc.is_halted()) {
            break;
        }
        let irqs = pc.notify_irqs.load(Ordering::Acquire);
        let entries = tls.entries.load(Ordering::Acquire);
        let msg = EventMsg::new(T_PING).with_arg4(i as u64);
        let t0 = time::rdtsc();
        send_errors += u32::from(
            post_vcore_event(p, &msg, vc(v), EvqFlags::IPI | EvqFlags::VCORE_PRIVATE).is_err(),
        );
        // Spin (not halt): the measurement wants the kernel CPU awake.
        let deadline = time::now_ns() + 1_000_000_000;
        let entered = || tls.entries.load(Ordering::Acquire) != entries;
        while !entered() && time::now_ns() < deadline {
            core::hint::spin_loop();
        }
        if !entered() {
            break;
        }
        arrived += 1;
        // The sender interrupts a vcore only if it has notifications
        // enabled; one that woke (its tick) and was in a program step found
        // the message itself, by its `notif_pending`: no IPI to time.
        if pc.notify_irqs.load(Ordering::Acquire) == irqs {
            continue;
        }
        irq[timed] = pc.notify_tsc.load(Ordering::Relaxed).saturating_sub(t0);
        entry[timed] = tls.entry_tsc.load(Ordering::Relaxed).saturating_sub(t0);
        timed += 1;
    }
    let handled = wait_until(5_000, || TALLY_A.unique() >= arrived as u64);
    common::end(p, r);
    let cs: heapless::Vec<u64, 16> = p
        .tls_blocks()
        .iter()
        .map(|t| t.entry_cs.load(Ordering::Relaxed))
        .collect();
    // RPL 3 is CPL 3. (Under TCG and plain KVM the selector is the GDT's
    // `USER_CS`, 0x23; a hypervisor may run ring 3 on one of its own.)
    let ring3 = cs.iter().all(|&c| c & 3 == 3);

    let (imin, imed, ip99) = stats(&mut irq[..timed]);
    let (emin, emed, ep99) = stats(&mut entry[..timed]);
    let mhz = (time::tsc_hz() / 1_000_000).max(1);
    let _ = write!(
        r,
        "{arrived}/{n} notifications reached the ring-3 vcore entry, {timed} by an IPI; TSC \
         cycles min / median / p99: send to IPI handler {imin} / {imed} / {ip99}, send to \
         ring-3 vcore entry {emin} / {emed} / {ep99} \
         (TSC {mhz} MHz: {} / {} / {} ns); messages handled {}; vcore entries ran at CS {:#x} \
         (CPL {})",
        emin * 1000 / mhz,
        emed * 1000 / mhz,
        ep99 * 1000 / mhz,
        TALLY_A.unique(),
        cs.first().copied().unwrap_or(0),
        cs.first().copied().unwrap_or(0) & 3
    );
    r.check(started, "the vcores did not start");
    r.check(send_errors == 0, "a send was dropped");
    r.check(
        arrived == n,
        "a notification did not reach the vcore entry within 1 s",
    );
    r.check(timed > n / 2, "most notifications went without an IPI");
    r.check(handled, "a notified message was not handled");
    r.check(ring3, "a vcore entry did not run at CPL 3");
}
