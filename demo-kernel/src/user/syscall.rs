//! The system calls, as ring-3 code makes them: `int3` (the one gate open
//! to ring 3; why: platform/ring3.rs), number in `rax`, arguments in
//! `rdi`, `rsi`, `rdx`, result in `rax`; the kernel preserves every other
//! register.

use core::arch::asm;

use super::abi::{Errno, nr};

/// A system call with three arguments; the raw `rax`.
#[inline(always)]
pub fn raw(number: u64, a: u64, b: u64, c: u64) -> u64 {
    let ret;
    // SAFETY: `int3` enters the kernel through its system-call gate, which
    // validates everything it is given; it changes no register but `rax`
    // (the stubs restore the rest) and may read or write this process's
    // memory (no `nomem`). Nothing is pushed on our stack (the CPU switches
    // to the kernel's), and the target has no red zone.
    unsafe {
        asm!("int3", inlateout("rax") number => ret, in("rdi") a, in("rsi") b,
             in("rdx") c, options(nostack));
    }
    ret
}

fn result(rax: u64) -> Result<u64, Errno> {
    match Errno::decode(rax) {
        Some(e) => Err(e),
        None => Ok(rax),
    }
}

/// Gives the core back; returns only if the kernel refused.
pub fn yield_vcore() -> Errno {
    Errno::decode(raw(nr::YIELD, 0, 0, 0)).unwrap_or(Errno::Refused)
}

/// Leaves vcore context for the uthread (saved, or fresh: `start(vcoreid)`
/// on the stack `stack_top`).
pub fn pop_uthread(start: extern "C" fn(u64) -> !, stack_top: usize) -> ! {
    raw(nr::POP_UTHREAD, start as usize as u64, stack_top as u64, 0);
    // The kernel refused the fresh context (it was not a sound one).
    exit()
}

/// Sets this vcore's `notif_pending` (an upcall follows if enabled).
pub fn self_notify() {
    raw(nr::SELF_NOTIFY, 0, 0, 0);
}

/// Sends `msg` (a `SharedEventMsg` at `msg_addr`) to the process's own
/// queue `queue`, suggesting vcore `vcoreid`.
pub fn send_event(queue: usize, msg_addr: usize, vcoreid: u32) -> Result<u64, Errno> {
    result(raw(
        nr::SEND_EVENT,
        queue as u64,
        msg_addr as u64,
        u64::from(vcoreid),
    ))
}

/// Halts until an interrupt (at once if an event is pending).
pub fn halt() {
    raw(nr::HALT, 0, 0, 0);
}

/// Halts until an interrupt, unless the byte at `flag` (the process's own
/// memory) is non-zero or an event is pending: the kernel checks both with
/// interrupts off before it halts, so a wake-up IPI sent after the flag
/// was set cannot be missed.
pub fn halt_unless(flag: usize) {
    raw(nr::HALT, flag as u64, 0, 0);
}

/// A zeroed page mapped into the process.
pub fn page_alloc() -> Option<usize> {
    result(raw(nr::PAGE_ALLOC, 0, 0, 0))
        .ok()
        .map(|a| a as usize)
}

/// Gives page `addr` back.
pub fn page_free(addr: usize) -> Result<u64, Errno> {
    result(raw(nr::PAGE_FREE, addr as u64, 0, 0))
}

/// Wakes the core of vcore `vcoreid` of this process.
pub fn wake_vcore(vcoreid: u32) -> Result<u64, Errno> {
    result(raw(nr::WAKE_VCORE, u64::from(vcoreid), 0, 0))
}

/// Ends the process.
pub fn exit() -> ! {
    loop {
        raw(nr::EXIT, 0, 0, 0);
    }
}
