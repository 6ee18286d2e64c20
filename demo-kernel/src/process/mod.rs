//! The process model: what adopting the event-delivery crates takes.

pub mod address_space;
pub mod context;
pub mod fault;
pub mod heap;
pub mod proc_ops;
#[allow(clippy::module_inception)] // the brief's layout: process/process.rs
mod process;
pub mod sched;
pub mod syscall;
pub mod trap;

pub use self::process::*;

/// Makes the kernel ready to run processes: records its own page tables
/// and takes over entries from ring 3. Once, on the BSP, before the first
/// process.
pub fn init() {
    address_space::init();
    trap::init();
}
