//! VCPD (`struct preempt_data`): per-vcore preemption and notification data.
//!
//! The saved contexts have the real x86_64 layouts. Kernel and vcore code
//! exchange them only as whole volatile copies ([`Racy`]); event delivery
//! never looks inside them.

use core::fmt;
use core::mem::size_of;

use bytemuck::{Pod, Zeroable};

use crate::flags::{VcpdFlags, VcpdRacyFlags};
use crate::mbox::EventMbox;
use crate::sync::{AtomicI32, AtomicUsize, Ordering, Racy, SharedBool};

/// `UserContext::ctx_type` of a hardware (trap/interrupt) context.
pub const ROS_HW_CTX: i32 = 1;
/// `UserContext::ctx_type` of a software (syscall) context.
pub const ROS_SW_CTX: i32 = 2;
/// `UserContext::ctx_type` of a virtual-machine context.
pub const ROS_VM_CTX: i32 = 3;

/// Registers saved on a trap or interrupt (192 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
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

/// The registers of a [`UserContext`]: C's anonymous union of the three
/// trapframes, as 208 bytes that [`UserContext::ctx_type`] says how to read.
///
/// Not a Rust `union`: a union value built from its smaller variants has
/// uninitialised bytes past them, so it could not be `Pod` (bytemuck's
/// derive rightly refuses it) and copying it into shared memory would
/// publish uninitialised bytes. Storage of the largest size, with
/// conversions that zero-fill, has neither problem and needs no `unsafe`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Trapframe([u64; TRAPFRAME_WORDS]);

/// Words of a [`Trapframe`]: the largest variant, [`VmTrapframe`].
const TRAPFRAME_WORDS: usize = size_of::<VmTrapframe>() / 8;

impl Trapframe {
    fn from_variant<T: Pod>(v: &T) -> Self {
        let mut t = Self::zeroed();
        bytemuck::bytes_of_mut(&mut t)[..size_of::<T>()].copy_from_slice(bytemuck::bytes_of(v));
        t
    }

    fn variant<T: Pod>(&self) -> T {
        bytemuck::pod_read_unaligned(&bytemuck::bytes_of(self)[..size_of::<T>()])
    }

    /// A hardware context (the bytes past it zeroed).
    pub fn from_hw(hw: HwTrapframe) -> Self {
        Self::from_variant(&hw)
    }

    /// A software context (the bytes past it zeroed).
    pub fn from_sw(sw: SwTrapframe) -> Self {
        Self::from_variant(&sw)
    }

    /// A VM context.
    pub fn from_vm(vm: VmTrapframe) -> Self {
        Self::from_variant(&vm)
    }

    /// The registers read as a hardware context.
    pub fn hw(&self) -> HwTrapframe {
        self.variant()
    }

    /// The registers read as a software context.
    pub fn sw(&self) -> SwTrapframe {
        self.variant()
    }

    /// The registers read as a VM context.
    pub fn vm(&self) -> VmTrapframe {
        self.variant()
    }
}

/// A saved user context (216 bytes).
#[repr(C)]
#[derive(Debug, Default)]
pub struct UserContext {
    /// [`ROS_HW_CTX`], [`ROS_SW_CTX`] or [`ROS_VM_CTX`].
    pub ctx_type: AtomicI32,
    /// The registers.
    pub tf: Racy<Trapframe>,
}

/// Bytes of the XSAVE image Akaros's `struct ancillary_state` declares:
/// 512 legacy (FXSAVE) + 32 XSAVE header (`xstate_bv`, `xcomp_bv`, one
/// 16-byte `reserv6`) + 2120 extended region = 2664, padded to the 64-byte
/// alignment: 2688 (what gcc compiles; the header's "offset 576" comment is
/// wrong, see `tests/gcc_layout/`).
pub const ANCILLARY_STATE_BYTES: usize = 2688;

/// The XSAVE image, field by field as Akaros declares it (the legacy
/// region's unions flattened to byte arrays of the same extent).
#[repr(C, align(64))]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct XsaveArea {
    /// FXSAVE header: FPU control/status words, FPU IP/DP, MXCSR, its mask.
    pub fp_head: [u8; 32],
    /// ST0-ST7 / MM0-MM7, 16 bytes each.
    pub st_mm: [[u8; 16]; 8],
    /// XMM0-XMM15.
    pub xmm: [[u8; 16]; 16],
    /// The legacy region's reserved tail.
    pub fx_reserved: [u8; 96],
    /// XSAVE header: state components present.
    pub xstate_bv: u64,
    /// XSAVE header: compaction (XSAVEC/XSAVES) bits.
    pub xcomp_bv: u64,
    /// XSAVE header: the one reserved field Akaros declares (16 bytes).
    pub reserv6: [u8; 16],
    /// AVX and later state components, through ZMM31.
    pub extended_region: [u8; 2120],
    /// Tail padding to the 64-byte alignment (implicit in C; explicit here
    /// so the type has no padding and can be `Pod`).
    pub tail_pad: [u8; 24],
}

impl fmt::Debug for XsaveArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XsaveArea")
            .field("xstate_bv", &self.xstate_bv)
            .field("xcomp_bv", &self.xcomp_bv)
            .finish_non_exhaustive()
    }
}

impl Default for XsaveArea {
    fn default() -> Self {
        Self::zeroed()
    }
}

/// FPU/vector state as saved by XSAVE (`struct ancillary_state`): a
/// 64-byte aligned image, copied in and out whole.
#[repr(C, align(64))]
#[derive(Default)]
pub struct AncillaryState(pub Racy<XsaveArea>);

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
