//! Scenario 8, IPI latency: TSC cycles from a kernel send to the vcore's
//! notification handler, over 2000 sends: min / median / p99.
//!
//! The app's vcores sit idle (halted). The kernel CPU reads the TSC, then
//! `post_vcore_event` with `IPI | VCORE_PRIVATE` to one vcore (the real
//! send path: post into its private VCPD mailbox, set `notif_pending`,
//! `ipi_vcore`); the notification handler on the vcore's core records the
//! TSC. The difference is the latency (under TCG it measures the emulator,
//! not hardware: it is printed, not judged). PASS if every notification
//! arrived and every message was then handled by its vcore.

use core::fmt::Write;
use core::sync::atomic::Ordering;

use event_core::{VcoreId, post_vcore_event};
use spin::Mutex;
use vcpd_abi::{EventMsg, EvqFlags};

use super::common::{self, Report, TALLY_A, wait_until};
use crate::process::{Recv, vc};
use crate::{sched, time, vcore};

const N: usize = 2000;
/// Sends in short mode.
const N_SHORT: usize = 500;
const T_PING: u16 = 37;

static SAMPLES: Mutex<[u64; N]> = Mutex::new([0; N]);

fn on_ping(_: &Recv<'_>, v: VcoreId, msg: &EventMsg, _: usize) {
    let v = v.get();
    TALLY_A.record(v, msg.ev_arg4);
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
    let mut arrived = 0;
    let mut send_errors = 0;
    for (i, sample) in samples.iter_mut().take(n).enumerate() {
        let v = i as u32 % n_vc;
        let Some(cpu) = p.vcore_pcore(v) else { break };
        let pc = sched::pcore(cpu);
        let before = pc.notify_irqs.load(Ordering::Acquire);
        let msg = EventMsg::new(T_PING).with_arg4(i as u64);
        let t0 = time::rdtsc();
        send_errors += u32::from(
            post_vcore_event(p, &msg, vc(v), EvqFlags::IPI | EvqFlags::VCORE_PRIVATE).is_err(),
        );
        // Spin (not halt): the measurement wants the kernel CPU awake.
        let deadline = time::now_ns() + 1_000_000_000;
        while pc.notify_irqs.load(Ordering::Acquire) == before && time::now_ns() < deadline {
            core::hint::spin_loop();
        }
        if pc.notify_irqs.load(Ordering::Acquire) == before {
            break;
        }
        *sample = pc.notify_tsc.load(Ordering::Relaxed).saturating_sub(t0);
        arrived += 1;
    }
    let handled = wait_until(5_000, || TALLY_A.unique() >= arrived as u64);
    common::end(p, r);

    let got = &mut samples[..arrived];
    got.sort_unstable();
    let pick = |q: usize| got.get((got.len() * q / 100).min(got.len().saturating_sub(1)));
    let (min, med, p99) = (
        got.first().copied().unwrap_or(0),
        pick(50).copied().unwrap_or(0),
        pick(99).copied().unwrap_or(0),
    );
    let mhz = (time::tsc_hz() / 1_000_000).max(1);
    let _ = write!(
        r,
        "{arrived}/{n} notifications arrived; send-to-handler TSC cycles min {min} median {med} \
         p99 {p99} (TSC {mhz} MHz: {} / {} / {} ns); messages handled {}",
        min * 1000 / mhz,
        med * 1000 / mhz,
        p99 * 1000 / mhz,
        TALLY_A.unique()
    );
    r.check(started, "the vcores did not start");
    r.check(send_errors == 0, "a send was dropped");
    r.check(arrived == n, "a notification IPI did not arrive within 1 s");
    r.check(handled, "a notified message was not handled");
}
