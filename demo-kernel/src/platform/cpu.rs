//! The control-register settings every CPU needs before it runs ring-3
//! code, set by each CPU for itself during bring-up.
//!
//! - `EFER.NXE`: page-table entries may forbid execution, so a process
//!   cannot execute its data, its stacks or kernel data (address_space.rs
//!   sets the bit wherever code does not live). Only if the CPU has NX.
//! - `CR4.SMEP` and `CR4.SMAP` stay **off**, on purpose: ring 3 runs the
//!   kernel image's own text (mapped user-executable, read-only), which
//!   SMEP would forbid ring 0 to execute; and the kernel reaches a
//!   process's pages through their identity mapping without `stac`/`clac`.
//!   What keeps the kernel from following a process's pointers blindly is
//!   `UserMemory::translate`, not SMAP.
//! - `CR4.TSD` stays clear: ring 3 reads the TSC (its clock, and the
//!   latency probe at the vcore entry).

use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::registers::model_specific::{Efer, EferFlags};

static NX: AtomicBool = AtomicBool::new(false);

/// Sets this CPU up for ring 3 (see the module docs). Call once per CPU,
/// the BSP first.
pub fn init() {
    // SAFETY: CPUID leaf 0x8000_0001 exists on every x86_64 CPU (long mode
    // is reported there) and only reads identification registers.
    // (`__cpuid` is a safe fn on recent Rust, `unsafe` on older ones.)
    #[allow(unused_unsafe)]
    let ext = unsafe { core::arch::x86_64::__cpuid(0x8000_0001) };
    if ext.edx & (1 << 20) != 0 {
        // SAFETY: setting NXE only makes the XD bit of page-table entries
        // meaningful; no entry in use has it set before address_space.rs
        // builds tables with it, which it does only once `nx()` is true,
        // i.e. after the BSP got here (APs get here before they run any
        // process).
        unsafe { Efer::update(|f| f.insert(EferFlags::NO_EXECUTE_ENABLE)) };
        NX.store(true, Ordering::Release);
    }
}

/// Whether page tables may use the no-execute bit (the BSP has NX, and
/// every CPU enables it in [`init`]).
pub fn nx() -> bool {
    NX.load(Ordering::Acquire)
}
