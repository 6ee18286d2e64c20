//! The system calls (`int3`, numbers in `user::abi::nr`): what a
//! vcore's ring-3 code may ask of the kernel. Each one checks its
//! arguments the way the send path checks shared memory: a pointer must be
//! the process's own writable memory (`UserMemory`, the page-table walk),
//! a vcore id one of its own; anything else is refused with an error, and
//! counted (`bad_syscalls`), never a kernel panic.
//!
//! They run on the trap stack with interrupts off (an interrupt gate),
//! except `HALT`, which waits for one.

use core::sync::atomic::Ordering;

use event_core::send_event;
use vcpd_abi::{SharedEventMsg, UserAddr, UserMemoryExt};
use x86_64::instructions::interrupts;

use crate::platform::idt::InterruptFrame;
use crate::process::trap::{self, Stop};
use crate::process::{Death, ProcState, Process, context, sched};
use crate::user::abi::{Errno, nr};

/// Runs the system call in `frame` for vcore `v` of `p`; the result goes
/// to `frame.rax` (or the frame becomes the context to resume).
pub fn handle(p: &Process, v: u32, frame: &mut InterruptFrame) {
    p.counters.syscalls.fetch_add(1, Ordering::Relaxed);
    let (a, b, c) = (frame.rdi, frame.rsi, frame.rdx);
    let result = match frame.rax {
        nr::YIELD => match p.sys_yield(v) {
            Ok(()) => trap::leave(Stop::Yielded),
            // Not malformed: a message is pending, or a preemption is
            // under way.
            Err(_) => {
                frame.rax = Errno::Refused.encode();
                return;
            }
        },
        nr::POP_UTHREAD => return pop_uthread(p, v, frame, a, b),
        nr::SELF_NOTIFY => {
            if let Some(vcpd) = p.vcpd(v) {
                // A swap, as every write of the flag (event-core's
                // `handle_events` relies on their total order).
                vcpd.notif_pending.swap(true, Ordering::AcqRel);
            }
            Ok(0)
        }
        nr::SEND_EVENT => send(p, a, b, c),
        nr::HALT => halt(p, v, a).map(|()| 0),
        nr::PAGE_ALLOC => p.space().alloc_page().map(|a| a as u64).ok_or(Errno::NoMem),
        nr::PAGE_FREE => usize::try_from(a)
            .ok()
            .and_then(|a| p.free_user_page(a).ok())
            .map(|()| 0)
            .ok_or(Errno::Inval),
        nr::WAKE_VCORE => u32::try_from(a)
            .ok()
            .filter(|&w| w < p.nr_vcores())
            .map(|w| {
                if let Some(cpu) = p.vcore_pcore(w).filter(|_| p.vcore_mapped(w)) {
                    sched::wake_pcore(cpu);
                }
                0
            })
            .ok_or(Errno::Inval),
        nr::EXIT => {
            println!("process {}: exits (vcore {v})", p.name());
            p.destroy(Death::Exit);
            trap::leave(Stop::Dead)
        }
        _ => Err(Errno::NoSys),
    };
    frame.rax = match result {
        Ok(value) => value,
        Err(e) => {
            p.counters.bad_syscalls.fetch_add(1, Ordering::Relaxed);
            e.encode()
        }
    };
}

/// `SEND_EVENT`: the message must be the process's own memory, the vcore
/// id below `MAX_NUM_VCORES`; the queue is checked by `send_event` itself.
fn send(p: &Process, queue: u64, msg: u64, vcoreid: u64) -> Result<u64, Errno> {
    let msg = usize::try_from(msg)
        .ok()
        .and_then(|m| p.user_ref::<SharedEventMsg>(m))
        .ok_or(Errno::Fault)?
        .read();
    let vcoreid = u32::try_from(vcoreid)
        .ok()
        .and_then(event_core::VcoreId::new)
        .ok_or(Errno::Inval)?;
    let queue = usize::try_from(queue).map_err(|_| Errno::Fault)?;
    send_event(p, UserAddr::new(queue), &msg, vcoreid)
        .map(|_| 0)
        .map_err(|_| Errno::Refused)
}

/// `HALT`: sleeps until an interrupt, unless there is something to do
/// already: an event pending (`notif_pending`, with notifications enabled
/// or not: a vcore that halts with them disabled polls), the flag byte at
/// `flag` set, or the way back to ring 3 has work (a preemption, the
/// process dying). The checks run with interrupts off and `sti; hlt` is
/// one step, so an IPI sent after the check still ends the halt.
fn halt(p: &Process, v: u32, flag: u64) -> Result<(), Errno> {
    let flag = match flag {
        0 => None,
        a => Some(
            usize::try_from(a)
                .ok()
                .and_then(|a| p.user_ref::<core::sync::atomic::AtomicU8>(a))
                .ok_or(Errno::Fault)?,
        ),
    };
    let pending = p
        .vcpd(v)
        .is_none_or(|vcpd| vcpd.notif_pending.load(Ordering::Acquire))
        || flag.is_some_and(|f| f.load(Ordering::Acquire) != 0);
    let stopped =
        p.state() == ProcState::Dying || !p.vcore_on(v, crate::platform::percpu::current_index());
    if !pending && !stopped {
        let pc = sched::this_pcore();
        pc.halted.store(true, Ordering::Release);
        interrupts::enable_and_hlt();
        interrupts::disable();
        pc.halted.store(false, Ordering::Release);
    }
    Ok(())
}

/// `POP_UTHREAD`: notifications on again, and the uthread resumed: its
/// saved context, or a fresh one at `start(v)` on `stack`. If a
/// notification is pending, the way back to ring 3 enters the vcore entry
/// again instead (trap.rs), with the context saved once more.
fn pop_uthread(p: &Process, v: u32, frame: &mut InterruptFrame, start: u64, stack: u64) {
    let Some(vcpd) = p.vcpd(v) else { return };
    let next =
        context::take(&vcpd.uthread_ctx).or_else(|| context::fresh(start, stack, u64::from(v)));
    match next {
        Some(next) => {
            *frame = next;
            vcpd.notif_disabled.store(false, Ordering::SeqCst);
        }
        None => {
            p.counters.bad_syscalls.fetch_add(1, Ordering::Relaxed);
            frame.rax = Errno::Inval.encode();
        }
    }
}
