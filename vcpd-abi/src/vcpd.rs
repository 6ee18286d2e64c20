//! VCPD (`struct preempt_data`): per-vcore preemption and notification data.
//!
//! The saved contexts have the real x86_64 layouts. Kernel and vcore code
//! exchange them only as whole volatile copies ([`Racy`]); event delivery
//! never looks inside them.

use core::fmt;

use crate::flags::{VcpdFlags, VcpdRacyFlags};
use crate::mbox::EventMbox;
use crate::sync::{AtomicI32, AtomicUsize, Ordering, Pod, Racy, SharedBool};

/// `UserContext::ctx_type` of a hardware (trap/interrupt) context.
pub const ROS_HW_CTX: i32 = 1;
/// `UserContext::ctx_type` of a software (syscall) context.
pub const ROS_SW_CTX: i32 = 2;
/// `UserContext::ctx_type` of a virtual-machine context.
pub const ROS_VM_CTX: i32 = 3;

/// Registers saved on a trap or interrupt (192 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // register names speak for themselves
pub struct HwTrapframe {
    pub gsbase: u64,
    pub fsbase: u64,
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rbp: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub trapno: u32,
    pub padding5: u32,
    pub err: u32,
    pub padding4: u32,
    pub rip: u64,
    pub cs: u16,
    pub padding3: u16,
    pub padding2: u32,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u16,
    pub padding1: u16,
    pub padding0: u32,
}

/// Callee-saved registers saved on a system call (88 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // register names speak for themselves
pub struct SwTrapframe {
    pub gsbase: u64,
    pub fsbase: u64,
    pub rbx: u64,
    pub rbp: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rsp: u64,
    pub mxcsr: u32,
    pub fpucw: u16,
    pub padding0: u16,
}

/// A guest's state at a VM exit (208 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // register and VMCS field names speak for themselves
pub struct VmTrapframe {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rbp: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub guest_pcoreid: u32,
    pub flags: u32,
    pub trap_inject: u32,
    pub guest_intr_status: u16,
    pub padding0: u16,
    pub exit_reason: u32,
    pub exit_qual: u32,
    pub intrinfo1: u32,
    pub intrinfo2: u32,
    pub guest_va: u64,
    pub guest_pa: u64,
}

/// The three context layouts sharing storage; `UserContext::ctx_type` says
/// which one is meant.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(missing_docs)] // one field per context kind, named after it
pub union Trapframe {
    pub hw: HwTrapframe,
    pub sw: SwTrapframe,
    pub vm: VmTrapframe,
}

impl Default for Trapframe {
    fn default() -> Self {
        Self {
            vm: VmTrapframe::default(),
        }
    }
}

impl fmt::Debug for Trapframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Trapframe(..)")
    }
}

// SAFETY: plain `repr(C)` structs of integers (padding is explicit fields).
unsafe impl Pod for HwTrapframe {}
// SAFETY: plain `repr(C)` struct of integers (padding is explicit fields).
unsafe impl Pod for SwTrapframe {}
// SAFETY: plain `repr(C)` struct of integers (padding is explicit fields).
unsafe impl Pod for VmTrapframe {}
// SAFETY: a union of Pod structs of equal alignment; the largest variant
// covers every byte, so any bytes are a valid value.
unsafe impl Pod for Trapframe {}

/// A saved user context (216 bytes).
#[repr(C)]
#[derive(Debug, Default)]
pub struct UserContext {
    /// [`ROS_HW_CTX`], [`ROS_SW_CTX`] or [`ROS_VM_CTX`].
    pub ctx_type: AtomicI32,
    /// The registers.
    pub tf: Racy<Trapframe>,
}

/// Bytes of the XSAVE image: 512 legacy (FXSAVE) + 64 XSAVE header + 2120
/// extended region (enough for state components through ZMM31).
pub const ANCILLARY_STATE_BYTES: usize = 512 + 64 + 2120;

/// FPU/vector state as saved by XSAVE: an opaque, 64-byte aligned image.
#[repr(C, align(64))]
pub struct AncillaryState(pub Racy<[u8; ANCILLARY_STATE_BYTES]>);

impl Default for AncillaryState {
    fn default() -> Self {
        Self(Racy::new([0; ANCILLARY_STATE_BYTES]))
    }
}

impl fmt::Debug for AncillaryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AncillaryState(..)")
    }
}

/// Per-vcore preemption data (`struct preempt_data`).
#[repr(C)]
#[derive(Debug, Default)]
pub struct Vcpd {
    /// The vcore's context, saved at preemption.
    pub vcore_ctx: UserContext,
    /// FPU state saved at preemption.
    pub preempt_anc: AncillaryState,
    /// The uthread's context, saved at preemption or notification.
    pub uthread_ctx: UserContext,
    /// Vcore entry point, advertised by the process.
    pub vcore_entry: AtomicUsize,
    /// Vcore stack, advertised by the process.
    pub vcore_stack: AtomicUsize,
    /// Vcore TLS descriptor, advertised by the process.
    pub vcore_tls_desc: AtomicUsize,
    /// Raw [`VcpdFlags`], updated atomically by both sides.
    pub flags: AtomicUsize,
    /// Raw [`VcpdRacyFlags`].
    pub rflags: AtomicI32,
    /// The vcore does not want notifications (interrupts) now.
    pub notif_disabled: SharedBool,
    /// A message was posted for this vcore; it must check its mailboxes
    /// before it may yield.
    pub notif_pending: SharedBool,
    /// Public mailbox: any vcore may drain it (preemption recovery).
    pub ev_mbox_public: EventMbox,
    /// Private mailbox: only this vcore drains it.
    pub ev_mbox_private: EventMbox,
}

impl Vcpd {
    /// The flags, unknown bits retained.
    #[inline]
    pub fn flags(&self, order: Ordering) -> VcpdFlags {
        VcpdFlags::from_bits_retain(self.flags.load(order))
    }

    /// Atomically sets `f`, returning the previous flags.
    #[inline]
    pub fn set_flags(&self, f: VcpdFlags, order: Ordering) -> VcpdFlags {
        VcpdFlags::from_bits_retain(self.flags.fetch_or(f.bits(), order))
    }

    /// Atomically clears `f`, returning the previous flags.
    #[inline]
    pub fn clear_flags(&self, f: VcpdFlags, order: Ordering) -> VcpdFlags {
        VcpdFlags::from_bits_retain(self.flags.fetch_and(!f.bits(), order))
    }

    /// The racy flags, unknown bits retained.
    #[inline]
    pub fn racy_flags(&self) -> VcpdRacyFlags {
        VcpdRacyFlags::from_bits_retain(self.rflags.load(Ordering::Relaxed) as u32)
    }

    /// The public or the private mailbox.
    #[inline]
    pub fn mbox(&self, private: bool) -> &EventMbox {
        if private {
            &self.ev_mbox_private
        } else {
            &self.ev_mbox_public
        }
    }
}
