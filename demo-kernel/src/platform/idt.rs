//! The interrupt descriptor table and the dispatch of every vector.
//!
//! All 256 gates point at the assembly stubs of `asm/isr.S` (stable Rust has
//! no `extern "x86-interrupt"`); the stubs save the registers and call
//! [`dispatch`] with the vector and an [`InterruptFrame`]. One IDT is shared
//! by all CPUs.
//!
//! - Vectors 0..32 are CPU exceptions: in ring 0 fatal, reported by
//!   exceptions.rs; in ring 3 the user hook's (below).
//!   Double fault, NMI and machine check run on IST stacks (gdt.rs).
//! - [`SYSCALL_VECTOR`] (3, the breakpoint: `int3`) is the system-call
//!   gate, the only one open to ring 3 (DPL 3; any other `int n` from ring
//!   3 is a #GP). Why that one: platform/ring3.rs. From ring 0 it is still
//!   a fatal breakpoint.
//! - Whatever arrives from ring 3 (an exception, a system call, or an
//!   interrupt of ring-3 code, after its handler) goes to the kernel's
//!   [`UserHook`] (the process model's, set with [`set_user_hook`]), which
//!   decides how ring 3 continues, if at all: an exception in ring 3 kills
//!   the process, not the kernel.
//! - Vectors 0x20..=0xff are device interrupts and IPIs. Kernel code
//!   registers a [`Handler`] per vector with [`register`]; after the handler
//!   returns, the dispatcher signals end-of-interrupt to the local APIC, so
//!   handlers never EOI themselves. An interrupt nobody registered is fatal
//!   (a lost IPI would otherwise hang a scenario silently), except the
//!   spurious vector and the masked 8259's spurious IRQs, which need no EOI.

use core::arch::global_asm;
use core::sync::atomic::Ordering;

use apic::Vector;
use spin::{Once, RwLock};
use x86_64::VirtAddr;
use x86_64::instructions::interrupts;
use x86_64::structures::idt::InterruptDescriptorTable;

use crate::platform::gdt::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI};

global_asm!(
    include_str!("asm/isr.S"),
    dispatch = sym dispatch,
    resume_rsp = const core::mem::offset_of!(crate::platform::percpu::PerCpu, resume_rsp),
    trap_top = const core::mem::offset_of!(crate::platform::percpu::PerCpu, trap_top),
    options(att_syntax)
);

/// First vector that is not a CPU exception.
pub const FIRST_DEVICE_VECTOR: u8 = 0x20;
/// The legacy 8259 PICs are remapped to 0x20..0x30 and masked (lapic.rs);
/// only their spurious IRQ 7 / IRQ 15 can still arrive.
pub const PIC_VECTORS: core::ops::RangeInclusive<u8> = 0x20..=0x2f;
/// The local APIC's spurious-interrupt vector: no handler, no EOI.
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// The system-call gate: `int3` from ring 3 (see ring3.rs for why).
pub const SYSCALL_VECTOR: u8 = 3;

/// What brought the CPU from ring 3 into the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromUser {
    /// A CPU exception in ring 3 (the hook must not return).
    Exception,
    /// A system call (`int3`).
    Syscall,
    /// An interrupt (its handler has run and the APIC has its EOI).
    Interrupt,
}

/// Called for every entry from ring 3, on the trap stack, interrupts off,
/// with the frame `iretq` will resume (which it may rewrite, or never
/// return to: see `ring3::leave_user`).
pub type UserHook = fn(&mut InterruptFrame, FromUser);

static USER_HOOK: Once<UserHook> = Once::new();

/// Installs the hook for entries from ring 3 (once).
pub fn set_user_hook(hook: UserHook) {
    USER_HOOK.call_once(|| hook);
}

/// The registers of an interrupted context, as the stubs and the CPU left
/// them on the stack (lowest address first). A handler may change them:
/// `iretq` resumes whatever the frame says.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)] // the fields are the registers they are named after
pub struct InterruptFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// The vector, pushed by the stub.
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors without one.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const _: () = assert!(core::mem::size_of::<InterruptFrame>() == 22 * 8);
const _: () = assert!(core::mem::offset_of!(InterruptFrame, vector) == 15 * 8);

/// A handler of a device or IPI vector. Runs with interrupts disabled, on
/// the CPU that took the interrupt; must not block on a lock that code
/// running with interrupts enabled on that CPU may hold.
pub type Handler = fn(&mut InterruptFrame);

static HANDLERS: RwLock<[Option<Handler>; 256]> = RwLock::new([None; 256]);
static IDT: Once<InterruptDescriptorTable> = Once::new();

/// Bytes between two entry stubs in `asm/isr.S`.
const STUB_STRIDE: u64 = 16;

/// Address of the entry stub of `vector`.
fn stub(vector: u8) -> VirtAddr {
    unsafe extern "C" {
        static isr_stubs: u8;
    }
    VirtAddr::from_ptr(&raw const isr_stubs) + u64::from(vector) * STUB_STRIDE
}

fn build() -> InterruptDescriptorTable {
    unsafe extern "C" {
        static isr_stubs_end: u8;
    }
    // A stub that grew past 16 bytes would shift every later one.
    let stubs_len = VirtAddr::from_ptr(&raw const isr_stubs_end) - stub(0);
    assert_eq!(
        stubs_len,
        256 * STUB_STRIDE,
        "isr.S: an entry stub is longer than 16 bytes"
    );

    let mut idt = InterruptDescriptorTable::new();
    // SAFETY (for every `set_handler_addr` below): the address is the stub
    // for exactly that vector, which handles the error-code convention of
    // the vector, saves all registers and returns with `iretq`; the IST
    // slots named exist in every CPU's TSS (gdt.rs).
    macro_rules! exception {
        ($($field:ident = $vector:literal),* $(,)?) => {
            $(
                // SAFETY: see above.
                unsafe { idt.$field.set_handler_addr(stub($vector)) };
            )*
        };
    }
    exception!(
        divide_error = 0,
        debug = 1,
        overflow = 4,
        bound_range_exceeded = 5,
        invalid_opcode = 6,
        device_not_available = 7,
        invalid_tss = 10,
        segment_not_present = 11,
        stack_segment_fault = 12,
        general_protection_fault = 13,
        page_fault = 14,
        x87_floating_point = 16,
        alignment_check = 17,
        simd_floating_point = 19,
        virtualization = 20,
        cp_protection_exception = 21,
        hv_injection_exception = 28,
        vmm_communication_exception = 29,
        security_exception = 30,
    );
    // SAFETY: see above; the IST indices are the TSS slots set up in gdt.rs.
    unsafe {
        idt.non_maskable_interrupt
            .set_handler_addr(stub(2))
            .set_stack_index(IST_NMI);
        idt.double_fault
            .set_handler_addr(stub(8))
            .set_stack_index(IST_DOUBLE_FAULT);
        // The system-call gate, open to ring 3.
        idt.breakpoint
            .set_handler_addr(stub(SYSCALL_VECTOR))
            .set_privilege_level(x86_64::PrivilegeLevel::Ring3);
        idt.machine_check
            .set_handler_addr(stub(18))
            .set_stack_index(IST_MACHINE_CHECK);
    }
    for (i, entry) in idt
        .slice_mut(FIRST_DEVICE_VECTOR..=255)
        .iter_mut()
        .enumerate()
    {
        let vector = FIRST_DEVICE_VECTOR + i as u8;
        // SAFETY: see above.
        unsafe { entry.set_handler_addr(stub(vector)) };
    }
    idt
}

/// Loads the shared IDT on this CPU (building it on first use).
pub fn load() {
    IDT.call_once(build).load();
}

/// Installs `handler` for `vector` on all CPUs and returns the one it
/// replaces. ([`Vector`] rules out the exception vectors.)
///
/// # Panics
/// If `vector` is the spurious vector, which must not EOI.
pub fn register(vector: Vector, handler: Handler) -> Option<Handler> {
    assert!(
        vector.get() != SPURIOUS_VECTOR,
        "the spurious vector cannot take a handler"
    );
    // Interrupts off: a handler on this CPU must not find the lock held by
    // the code it interrupted.
    interrupts::without_interrupts(|| HANDLERS.write()[usize::from(vector.get())].replace(handler))
}

/// Removes the handler of `vector`; an interrupt there is fatal again.
pub fn unregister(vector: Vector) -> Option<Handler> {
    interrupts::without_interrupts(|| HANDLERS.write()[usize::from(vector.get())].take())
}

/// Called by `isr_common` for every interrupt and exception, on the stack
/// the CPU chose, with interrupts disabled (all gates are interrupt gates).
extern "C" fn dispatch(frame: &mut InterruptFrame) {
    let from_user = frame.cs & 3 == 3;
    let hook = USER_HOOK.get().copied().filter(|_| from_user);
    let vector = frame.vector as u8;
    if vector == SYSCALL_VECTOR {
        if let Some(hook) = hook {
            return hook(frame, FromUser::Syscall);
        }
    }
    if vector < FIRST_DEVICE_VECTOR {
        if let Some(hook) = hook {
            hook(frame, FromUser::Exception);
        }
        crate::platform::exceptions::fatal(frame);
    }
    if vector == SPURIOUS_VECTOR {
        if let Some(hook) = hook {
            hook(frame, FromUser::Interrupt);
        }
        return;
    }
    let handler = HANDLERS.read()[usize::from(vector)];
    match handler {
        Some(handler) => {
            // Interrupt context while the handler runs (event sends check
            // it). Relaxed: only this CPU reads its own counter.
            let cpu = crate::platform::percpu::current();
            cpu.irq_depth.fetch_add(1, Ordering::Relaxed);
            handler(frame);
            cpu.irq_depth.fetch_sub(1, Ordering::Relaxed);
            crate::platform::lapic::eoi();
        }
        // A masked 8259 still raises spurious IRQ 7/15: no EOI for those.
        None if PIC_VECTORS.contains(&vector) => {}
        None => crate::platform::exceptions::unexpected_interrupt(frame),
    }
    if let Some(hook) = hook {
        hook(frame, FromUser::Interrupt);
    }
}
