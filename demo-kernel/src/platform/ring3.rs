//! Running ring-3 code from a kernel loop, and coming back.
//!
//! [`enter_user`] is called by a kernel loop (the pcore loop of
//! process/sched.rs) with a register frame for ring 3: it saves the
//! loop's callee-saved registers and stack pointer in this CPU's
//! `PerCpu::resume_rsp`, copies the frame to the top of the CPU's trap
//! stack (where an entry from ring 3 would have put it) and leaves with
//! `iretq` (and `swapgs`: ring 3 runs on its own GS base, the kernel on
//! the per-CPU one). Every interrupt, exception and system call from ring
//! 3 comes back through `asm/isr.S` on the trap stack. When the kernel
//! decides that the code in ring 3 is done on this CPU (it yielded, was
//! preempted, died), it calls [`leave_user`] from wherever it is on the
//! trap stack: that drops the trap stack's frames and makes `enter_user`
//! return, with the reason, in the loop that called it.
//!
//! So the loop is an ordinary kernel function that "calls" user code, and
//! the trap path needs no scheduler of its own. The price: code that may
//! call `leave_user` must hold nothing that needs dropping (no lock
//! guards): the frames above it are abandoned, not unwound.
//!
//! **System calls** are `int3`: the breakpoint gate (vector 3) is the one
//! IDT gate open to ring 3 (DPL 3), and the kernel takes a breakpoint from
//! ring 3 as a system call (user/syscall.rs has the calling convention).
//! An interrupt gate rather than `syscall`/`sysret`: a system call then
//! arrives like every other entry from ring 3, with the same
//! [`InterruptFrame`] on the same trap stack and the same way back
//! (`iretq`), so saving a ring-3 context for a notification or a
//! preemption, or killing a process on a fault, is one piece of code for
//! every way in, and no `sysret` can fault in ring 0 on a non-canonical
//! RIP. Vector 3 rather than the customary `int $0x80`, and not `syscall`,
//! because of the project's KVM: it is PVM, a hypervisor that runs guests
//! without VT-x, and it reflects exceptions from ring 3 into the guest
//! faithfully, but turns an `int $0x80` into #UD and leaves a `syscall` to
//! a guest that is not PVM-aware in user mode at the entry point (its
//! `swapgs` faults). A breakpoint is delivered as the same trap by every
//! CPU and hypervisor the demo runs on (TCG, KVM, PVM, hardware). The
//! cycles an `iretq` costs over `sysret` do not matter here.

use crate::platform::idt::InterruptFrame;

unsafe extern "C" {
    /// See the module docs. `frame` is a complete ring-3 frame (CS and SS
    /// with RPL 3, IF set); returns the value passed to [`leave_user`].
    fn enter_user_asm(frame: *const InterruptFrame) -> u64;
    /// See the module docs.
    fn leave_user_asm(reason: u64) -> !;
}

/// Runs the ring-3 context `frame` on this CPU until the kernel calls
/// [`leave_user`]; that call's `reason`. Call with interrupts disabled.
///
/// # Safety
/// `frame` must be a sound ring-3 context: CS and SS are the user
/// selectors (RPL 3), RFLAGS has IF set and IOPL 0, RIP and RSP are
/// canonical, and the loaded page tables are the ones the code is to run
/// in (they map the kernel, so the trap path runs). The caller must be in
/// thread context of a kernel loop whose stack is not the trap stack.
pub unsafe fn enter_user(frame: &InterruptFrame) -> u64 {
    debug_assert!(frame.cs & 3 == 3 && frame.ss & 3 == 3);
    // SAFETY: the caller's promises are the assembly's preconditions.
    unsafe { enter_user_asm(frame) }
}

/// Ends the ring-3 run on this CPU: [`enter_user`] returns `reason`.
///
/// # Safety
/// Only on the trap stack of a run that [`enter_user`] started on this
/// CPU, with interrupts disabled, and with nothing on the trap stack that
/// needs dropping (its frames are discarded).
pub unsafe fn leave_user(reason: u64) -> ! {
    // SAFETY: as promised by the caller.
    unsafe { leave_user_asm(reason) }
}
