//! The process model: what adopting the event-delivery crates takes.
//!
//! | module | what |
//! |---|---|
//! | [`proc_ops`] | `ProcOps` and `UserMemory` for a process: the adoption in one file |
//! | [`address_space`] | a process's page tables and pages; `translate`, the page-table walk every user address goes through |
//! | [`process`](self::Process) (process.rs) | a process: creation, its vcores (event-core's `VcoreSet` under the process lock), yield, grant, preempt, restart, destroy |
//! | [`sched`] | pcores: APs running vcores in ring 3, parking preempted ones; the notification and preemption IPIs; the timer-driven scheduler |
//! | [`trap`] | every entry from ring 3 and the way back: upcalls, the preemption context save, where a run ends |
//! | [`context`] | ring-3 register contexts: VCPD slots, sanitising, entry frames |
//! | [`syscall`] | the system calls |
//! | [`fault`] | a fault in ring 3 kills the process |
//! | [`heap`] | the process's `malloc` for the scenarios' set-up |

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
