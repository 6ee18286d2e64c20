//! What kernel and process share beyond the event ABI (`vcpd_abi`): the
//! process block, each vcore's TLS block, and the system calls.
//!
//! The kernel places both blocks in the process's memory when it creates
//! the process (process.rs), writes the fields a process needs to find its
//! way (its procdata, its handler table, its stacks), and afterwards reads
//! and writes only atomics there, as with any shared memory: the process
//! may scribble on them and hurts only itself.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};

/// The process block: one per process, found through every TLS block.
#[repr(C)]
#[derive(Debug, Default)]
pub struct ProcBlock {
    /// Address of the `&'static dyn VcoreProgram` its vcores run (a static
    /// in the image's read-only data, `user::program`); the kernel's
    /// scenario code (the process's "main thread") switches it between runs.
    pub program: AtomicUsize,
    /// Non-zero: every vcore should yield (the end of a run).
    pub finish: AtomicU32,
    /// [`KIND_COOPERATIVE`] or [`KIND_HOSTILE`].
    pub kind: AtomicU32,
    /// An MCP (else an SCP).
    pub mcp: AtomicU32,
    /// Its number of vcores.
    pub nr_vcores: AtomicU32,
    /// Its procdata (`vcpd_abi::ProcData`).
    pub procdata: AtomicUsize,
    /// Its handler table (`HandlerTable<UserRt>`), 0 for a hostile process.
    pub handlers: AtomicUsize,
    /// TSC ticks per second (the process's clock).
    pub tsc_hz: AtomicU64,
    /// A scenario's argument (e.g. the hostile process's instructions).
    pub arg: AtomicUsize,
}

/// [`ProcBlock::kind`]: runs the receive half.
pub const KIND_COOPERATIVE: u32 = 0;
/// [`ProcBlock::kind`]: scribbles and attacks, never receives.
pub const KIND_HOSTILE: u32 = 1;

/// A vcore's TLS block: the FS base while the vcore runs points here (the
/// VCPD's `vcore_tls_desc`), its first word is its own address.
#[repr(C)]
#[derive(Debug, Default)]
pub struct VcoreTls {
    /// This block's address (`mov %fs:0` finds it).
    pub self_addr: AtomicUsize,
    /// The process block.
    pub proc_block: AtomicUsize,
    /// The vcore.
    pub vcoreid: AtomicU32,
    /// Set by the kernel when it starts or restarts the vcore: the next
    /// entry runs `vcore_online` (host rule 3), not just `handle_events`.
    pub online_pending: AtomicU32,
    /// Whose public mailbox the vcore is draining now (`u32::MAX`: its
    /// own): for handlers that need to know (scenario 5's MUST_RUN check).
    pub recovering: AtomicU32,
    /// Top of the uthread stack.
    pub uthread_stack: AtomicUsize,
    /// Vcore entries (starts and notifications).
    pub entries: AtomicU64,
    /// TSC at the first instruction of the latest entry.
    pub entry_tsc: AtomicU64,
    /// The CS register the latest entry found (ring 3: RPL 3).
    pub entry_cs: AtomicU64,
    /// Preempted peers' saved contexts (`vcore_ctx`) this vcore read while
    /// recovering their mailboxes...
    pub ctx_reads: AtomicU64,
    /// ...and how many of them were ring-3 contexts inside the image text.
    pub ctx_ring3: AtomicU64,
    /// Messages this vcore handled out of preempted peers' public mailboxes.
    pub recovered: AtomicU64,
    /// The vcore's random state (hostile code).
    pub rng: AtomicU64,
}

// SAFETY: both blocks are `repr(C)` structs of atomics only: any bytes are
// valid and shared references stay sound while the process writes them.
unsafe impl vcpd_abi::SharedMem for ProcBlock {}
// SAFETY: as above.
unsafe impl vcpd_abi::SharedMem for VcoreTls {}

/// System-call numbers (`int3` with the number in `rax`; arguments in
/// `rdi`, `rsi`, `rdx`; the result
/// in `rax`: a value, or an [`Errno`] as `-(errno)`). Every other register
/// is preserved.
pub mod nr {
    /// Give the core back (after `prepare_to_yield`). Returns only if
    /// refused (a message is pending, or the vcore is being preempted).
    pub const YIELD: u64 = 1;
    /// Vcore context is done: enable notifications and resume the uthread
    /// (its context saved in the VCPD's `uthread_ctx`, or a fresh one at
    /// `rdi` on the stack `rsi`). Does not return. If a notification is
    /// pending, the kernel enters the vcore entry again instead.
    pub const POP_UTHREAD: u64 = 2;
    /// Sets this vcore's `notif_pending`: with notifications enabled the
    /// kernel enters the vcore entry before the call returns.
    pub const SELF_NOTIFY: u64 = 3;
    /// `send_event` to one of the process's own queues: `rdi` the queue,
    /// `rsi` a `SharedEventMsg`, `rdx` the vcore suggested.
    pub const SEND_EVENT: u64 = 4;
    /// Halt until an interrupt; returns at once if `notif_pending` is set
    /// (whether notifications are enabled or not), or if `rdi` names a
    /// byte of the process's memory that is non-zero (a futex-like wait on
    /// a flag that a `WAKE_VCORE` follows).
    pub const HALT: u64 = 5;
    /// Map a zeroed page; its address.
    pub const PAGE_ALLOC: u64 = 6;
    /// Give back page `rdi`.
    pub const PAGE_FREE: u64 = 7;
    /// Wake the core of the process's vcore `rdi` (it may be halted).
    pub const WAKE_VCORE: u64 = 8;
    /// The process exits: it becomes DYING. Does not return.
    pub const EXIT: u64 = 9;
}

/// Why a system call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Errno {
    /// No such system call.
    NoSys = 1,
    /// A pointer argument is not the process's writable memory.
    Fault = 2,
    /// An argument is out of range.
    Inval = 3,
    /// The kernel said no (a refused yield, a send that was dropped).
    Refused = 4,
    /// Out of memory.
    NoMem = 5,
}

impl Errno {
    /// The `rax` value that carries it.
    pub const fn encode(self) -> u64 {
        (self as u64).wrapping_neg()
    }

    /// The error in a returned `rax`, if it is one.
    pub fn decode(rax: u64) -> Option<Self> {
        Some(match rax.wrapping_neg() {
            1 => Self::NoSys,
            2 => Self::Fault,
            3 => Self::Inval,
            4 => Self::Refused,
            5 => Self::NoMem,
            _ => return None,
        })
    }
}
