//! What runs on a simulated physical core while a vcore is mapped there:
//! the process's vcore code (receive half) and its yield decisions.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use event_core::vcores::Refused;

use super::track::RECOVERING;
use super::{Sim, vc};
use crate::rng::Rng;

/// Blocks while vcore `v` is not mapped (inactive or preempted).
/// Returns `false` on shutdown.
fn wait_mapped(sim: &Sim, v: u32) -> bool {
    while !sim.is_mapped(v) {
        if sim.shutdown.load(Ordering::Acquire) {
            return false;
        }
        thread::park_timeout(Duration::from_millis(1));
    }
    true
}

/// Called where vcore code can be "preempted": blocks until the kernel
/// restarts the vcore.
pub(super) fn park_while_preempted(sim: &Sim, v: u32) {
    while sim.is_preempted(v) && !sim.shutdown.load(Ordering::Acquire) {
        thread::park_timeout(Duration::from_millis(1));
    }
}

/// The vcore's life: wait to be mapped, come online (advertise
/// CAN_RCV_MSG, handle events), then loop handling notifications,
/// recovering preempted vcores' public mailboxes, and sometimes yielding
/// or requesting another vcore.
pub(super) fn run(sim: &Sim, v: u32, mut rng: Rng) {
    let _ = sim.vc[v as usize].thread.set(thread::current());
    let rx = sim.receiver();
    loop {
        if !wait_mapped(sim, v) {
            return;
        }
        rx.vcore_online(vc(v));
        loop {
            if sim.shutdown.load(Ordering::Acquire) {
                return;
            }
            if sim.is_preempted(v) {
                park_while_preempted(sim, v);
                // Restarted: a vcore coming back checks its messages first.
                if !wait_mapped(sim, v) {
                    return;
                }
                rx.vcore_online(vc(v));
            }
            let slot = &sim.vc[v as usize];
            if slot.interrupted.swap(false, Ordering::AcqRel)
                || sim.vcpd(v).notif_pending.load(Ordering::Acquire)
            {
                rx.handle_events(vc(v));
            }
            // Preemption recovery: drain the public mailboxes of vcores that
            // are bulk-preempted (their owners are not running).
            for b in sim.bulk_preempted() {
                RECOVERING.with(|r| r.set(true));
                rx.recover_public_mbox(vc(v), vc(b));
                RECOVERING.with(|r| r.set(false));
            }
            if sim.cfg.mcp && rng.chance(sim.cfg.request_pct) {
                sim.start_inactive_head();
            }
            let pinned = v == 0 && sim.cfg.vcore0_stays;
            let may_yield = !pinned && !sim.no_yield.load(Ordering::Acquire);
            if may_yield && rng.chance(sim.cfg.yield_pct) {
                rx.prepare_to_yield(vc(v));
                match sim.sys_yield(v) {
                    Ok(()) => break,
                    Err(Refused::NotOnline) => {
                        // Preempted while deciding to yield: the restart path
                        // above brings it back online.
                        park_while_preempted(sim, v);
                        if !wait_mapped(sim, v) {
                            return;
                        }
                        rx.vcore_online(vc(v));
                    }
                    Err(Refused::Dying) => return,
                    Err(_) => {
                        rx.vcore_online(vc(v));
                    }
                }
            }
            thread::yield_now();
        }
    }
}
