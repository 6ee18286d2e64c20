//! The process's runtime, in ring 3: its TLS, its receiver, its clock, and
//! pages for the receive half.
//!
//! A vcore finds everything through its TLS block (`user::abi::VcoreTls`):
//! the kernel points the FS base at it whenever the vcore runs (the VCPD's
//! `vcore_tls_desc`), and its first word is its own address, so
//! `mov %fs:0` yields it; from there the process block, and from that the
//! procdata and the handler table. All of it is the process's own memory,
//! set up by the kernel when it created the process, which the process
//! trusts as its own (a hostile process that scribbles on it faults, and
//! dies).

use core::sync::atomic::Ordering;

use event_core::VcoreId;
use event_core::recv::{HandlerTable, Receiver, VcoreRuntime};
use vcpd_abi::{ProcData, SharedMem, Vcpd};

use super::abi::{ProcBlock, VcoreTls};
use super::syscall;

/// The receive half's runtime in ring 3: pages come from the kernel by
/// system call (a UCQ consumer hands surplus pages back the same way).
#[derive(Debug, Clone, Copy, Default)]
pub struct UserRt;

impl VcoreRuntime for UserRt {
    fn relax(&self) {
        core::hint::spin_loop();
    }

    fn alloc_page(&self) -> Option<usize> {
        syscall::page_alloc()
    }

    fn free_page(&self, page: usize) {
        // A refusal means the queue handed back a page that is not ours to
        // free; nothing to do about it here.
        let _ = syscall::page_free(page);
    }

    fn vcore_id(&self) -> u32 {
        tls().vcoreid.load(Ordering::Relaxed)
    }
}

/// A receiver over this process's procdata: what its vcores use.
pub type Rx = Receiver<'static, UserRt>;
/// The receiver handlers get.
pub type Recv<'a> = Receiver<'a, UserRt>;

/// The object of type `T` at `addr` in the process's own memory (an
/// address the process stored itself: a queue, a mailbox, a block the
/// kernel placed), or `None` for null or misaligned addresses.
pub fn own<T: SharedMem>(addr: usize) -> Option<&'static T> {
    if addr == 0 || addr % align_of::<T>() != 0 {
        return None;
    }
    // SAFETY: ring-3 code passes only addresses it found in its own
    // structures, which the process's set-up filled with its own, mapped
    // memory that stays mapped for the process's life (address_space.rs);
    // `T: SharedMem` keeps the reference sound while others write the
    // bytes. A wrong address faults in ring 3, and kills only this process.
    Some(unsafe { &*core::ptr::with_exposed_provenance::<T>(addr) })
}

/// This vcore's TLS block.
pub fn tls() -> &'static VcoreTls {
    let addr: usize;
    // SAFETY: reads the first word of the FS segment: the kernel sets the
    // FS base to this vcore's TLS block before it runs the vcore, and the
    // block's first word holds its own address.
    unsafe {
        core::arch::asm!("mov {}, fs:0", out(reg) addr, options(nostack, readonly, preserves_flags));
    }
    own::<VcoreTls>(addr).expect("the kernel set the TLS block up")
}

/// This process's block.
pub fn proc_block() -> &'static ProcBlock {
    own::<ProcBlock>(tls().proc_block.load(Ordering::Relaxed)).expect("set up at creation")
}

/// The running vcore.
pub fn vcore_id() -> VcoreId {
    VcoreId::new(tls().vcoreid.load(Ordering::Relaxed)).expect("a vcore id")
}

/// This process's procdata.
pub fn procdata() -> &'static ProcData {
    own::<ProcData>(proc_block().procdata.load(Ordering::Relaxed)).expect("set up at creation")
}

/// Vcore `v`'s VCPD.
pub fn vcpd(v: VcoreId) -> &'static Vcpd {
    &procdata().vcpd[v.index()]
}

/// This process's handler table.
///
/// # Panics
/// In a process without one (the hostile process never receives).
pub fn handlers() -> &'static HandlerTable<UserRt> {
    let addr = proc_block().handlers.load(Ordering::Relaxed);
    assert!(addr != 0 && addr % align_of::<HandlerTable<UserRt>>() == 0);
    // SAFETY: the kernel constructed a `HandlerTable<UserRt>` at this
    // address of the process's memory when it created the process, and
    // only code that uses it as that type (this and the scenarios' set-up,
    // acting as the process's main thread) touches those pages.
    unsafe { &*core::ptr::with_exposed_provenance::<HandlerTable<UserRt>>(addr) }
}

/// The receiver of this process.
pub fn rx() -> Rx {
    // SAFETY: the procdata and every queue reachable from it were set up
    // through event-core's `setup` in pages of this process that stay
    // mapped for its life (address_space.rs never unmaps them).
    unsafe { Receiver::new(procdata(), handlers(), &UserRt) }
}

/// Reads the TSC (CR4.TSD is clear: allowed in ring 3).
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads a counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Nanoseconds on the process's clock (the TSC, at the rate the kernel
/// measured and wrote into the process block).
pub fn now_ns() -> u64 {
    let hz = proc_block().tsc_hz.load(Ordering::Relaxed).max(1);
    (u128::from(rdtsc()) * 1_000_000_000 / u128::from(hz)) as u64
}
