//! The process's side: the code vcores run, in ring 3.
//!
//! A process here runs the kernel image's own code at CPL 3: the image's
//! text is mapped into every process user-readable and executable (but not
//! writable), its read-only data user-readable, and nothing else of the
//! kernel is user-accessible (process/address_space.rs, linker.ld). That is
//! the choice between linking "user" functions into separate pages and
//! sharing the text: the receive half is generic code of `event-core`,
//! `ucq`, `ceq`, `core`..., which the compiler places wherever it likes,
//! so only the whole text can be shared. What ring 3 can do with it is
//! what any process can do with a library: run it, with its own rights. A
//! kernel function that touches kernel data, or runs a privileged
//! instruction, faults there (and the fault kills the process: scenario 7
//! tries). Read-only text and constants are not secrets here.
//!
//! Ring-3 code reaches the kernel only through system calls
//! ([`syscall`]), and memory only through its own mappings: its procdata,
//! queues and UCQ pages, its stacks and TLS blocks, and, in the cooperative
//! processes, the image's `.user_data` (the scenarios' tallies, which the
//! kernel's scenario code reads to judge). Code in this module and the
//! scenarios' vcore programs and handlers (marked "ring 3" there) is such
//! code; it must not call kernel functions that touch kernel data (a
//! `println!`, `time::now_ns`, a `log` macro...): they fault.
//!
//! | module | what |
//! |---|---|
//! | [`abi`] | the process and TLS blocks, system-call numbers (shared with the kernel) |
//! | [`syscall`] | the system calls (`int3`) |
//! | [`entry`] | the vcore entry (the notification upcall) and the uthread loop |
//! | [`runtime`] | TLS, the receiver, the clock, page allocation for the receive half |
//! | [`program`] | what a scenario's vcores run: [`program::VcoreProgram`] |

pub mod abi;
pub mod entry;
pub mod program;
pub mod runtime;
pub mod syscall;

pub use runtime::{Recv, Rx, UserRt};
