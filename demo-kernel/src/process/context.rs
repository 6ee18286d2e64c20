//! Ring-3 register contexts: the trap path's [`InterruptFrame`], the
//! VCPD's saved `UserContext` (the ABI's `HwTrapframe`), and the frames the
//! kernel builds to enter a vcore.
//!
//! The whole image is built without SSE (the target's soft-float), so a
//! ring-3 context is its general registers, RIP, RSP, RFLAGS and the FS
//! base: no FPU state to save (the VCPD's `preempt_anc` stays unused).
//!
//! Every context the kernel resumes comes from process memory (a VCPD slot
//! the process may have scribbled on, or addresses it advertised), so it
//! is made safe first: CS and SS are the user selectors whatever the slot
//! says, RFLAGS keeps only the arithmetic flags and gets IF, and RIP and
//! RSP must be canonical lower-half addresses (`iretq` to a non-canonical
//! RIP would fault in ring 0). A process can make its own vcore jump
//! anywhere in ring 3; it cannot get ring 0, I/O privilege, or interrupts
//! off.

use core::sync::atomic::Ordering;

use vcpd_abi::vcpd::ROS_HW_CTX;
use vcpd_abi::{HwTrapframe, Trapframe, UserContext, Vcpd};
use x86_64::registers::model_specific::FsBase;

use crate::platform::gdt::{USER_CS, USER_SS};
use crate::platform::idt::InterruptFrame;

/// RFLAGS bits a ring-3 context keeps: CF, PF, AF, ZF, SF, DF, OF.
const USER_FLAGS: u64 = 0x0cd5;
/// RFLAGS.IF, and bit 1 (always set).
const FLAGS_ON: u64 = 0x0202;
/// The end of the lower canonical half.
const USER_TOP: u64 = 1 << 47;

fn user_addr(a: u64) -> Option<u64> {
    (a < USER_TOP).then_some(a)
}

/// Saves the ring-3 context `frame` into `slot`, then marks the slot
/// holding a hardware context (Release: a reader that sees the type sees
/// the registers).
pub fn save(frame: &InterruptFrame, slot: &UserContext) {
    let f = frame;
    let hw = HwTrapframe {
        fsbase: FsBase::read().as_u64(),
        rax: f.rax,
        rbx: f.rbx,
        rcx: f.rcx,
        rdx: f.rdx,
        rbp: f.rbp,
        rsi: f.rsi,
        rdi: f.rdi,
        r8: f.r8,
        r9: f.r9,
        r10: f.r10,
        r11: f.r11,
        r12: f.r12,
        r13: f.r13,
        r14: f.r14,
        r15: f.r15,
        trapno: f.vector as u32,
        err: f.error_code as u32,
        rip: f.rip,
        cs: f.cs as u16,
        rflags: f.rflags,
        rsp: f.rsp,
        ss: f.ss as u16,
        ..HwTrapframe::default()
    };
    slot.tf.write(Trapframe::from_hw(hw));
    slot.ctx_type.store(ROS_HW_CTX, Ordering::Release);
}

/// Takes the context saved in `slot` (emptying it), made safe; `None` if
/// the slot holds none, or one that cannot be made safe.
pub fn take(slot: &UserContext) -> Option<InterruptFrame> {
    if slot.ctx_type.swap(0, Ordering::AcqRel) != ROS_HW_CTX {
        return None;
    }
    let hw = slot.tf.read().hw();
    Some(InterruptFrame {
        r15: hw.r15,
        r14: hw.r14,
        r13: hw.r13,
        r12: hw.r12,
        r11: hw.r11,
        r10: hw.r10,
        r9: hw.r9,
        r8: hw.r8,
        rbp: hw.rbp,
        rdi: hw.rdi,
        rsi: hw.rsi,
        rdx: hw.rdx,
        rcx: hw.rcx,
        rbx: hw.rbx,
        rax: hw.rax,
        vector: 0,
        error_code: 0,
        rip: user_addr(hw.rip)?,
        cs: u64::from(USER_CS),
        rflags: (hw.rflags & USER_FLAGS) | FLAGS_ON,
        rsp: user_addr(hw.rsp)?,
        ss: u64::from(USER_SS),
    })
}

/// A fresh ring-3 context: `rip(rdi)` on the stack `rsp`; `None` unless
/// both are canonical lower-half addresses.
pub fn fresh(rip: u64, rsp: u64, rdi: u64) -> Option<InterruptFrame> {
    Some(InterruptFrame {
        rdi,
        rip: user_addr(rip)?,
        cs: u64::from(USER_CS),
        rflags: FLAGS_ON,
        rsp: user_addr(rsp)?,
        ss: u64::from(USER_SS),
        ..InterruptFrame::default()
    })
}

/// The vcore entry of vcore `v`, as its VCPD advertises it (entry point
/// and stack).
pub fn vcore_entry(vcpd: &Vcpd, v: u32) -> Option<InterruptFrame> {
    let r = Ordering::Relaxed;
    fresh(
        vcpd.vcore_entry.load(r) as u64,
        vcpd.vcore_stack.load(r) as u64,
        u64::from(v),
    )
}

/// Points this CPU's FS base at the vcore's TLS block, as its VCPD advertises
/// it (a non-canonical value becomes 0: writing it would fault in ring 0).
pub fn load_tls(vcpd: &Vcpd) {
    let tls = vcpd.vcore_tls_desc.load(Ordering::Relaxed) as u64;
    FsBase::write(x86_64::VirtAddr::new(user_addr(tls).unwrap_or(0)));
}
