//! Kernel-to-user event delivery for multicore kernels, after Akaros.
//!
//! The **send side** ([`send_event`], [`send_kernel_event`],
//! [`post_vcore_event`], [`send_posix_signal`]) is what a kernel calls to
//! deliver an event to a process: it posts into the mailbox the process's
//! event queue names (UCQ, CEQ or bitmap), then alerts a vcore with an
//! indirection and/or an IPI, or *spams* the message to public VCPD
//! mailboxes with the fallback algorithm that never loses a message while
//! vcores yield and get preempted. Everything a kernel must provide is in
//! [`ProcOps`] (and [`UserMemory`](vcpd_abi::UserMemory), which it
//! inherits); nothing here touches hardware.
//!
//! The **vcore lifecycle** ([`vcores`]) is the other half of the no-loss
//! guarantee: [`VcoreSet`] keeps a process's online, bulk-preempted and
//! inactive vcores and makes every transition (grant, yield, preemption,
//! restart, wakeup, destroy) with the locking, fences and re-checks the
//! send path relies on.
//!
//! The **receive side** ([`recv`]) is what a process's vcores run: drain
//! mailboxes, dispatch to handlers, handle indirections, recover another
//! vcore's public mailbox after a preemption, set queues up, and yield
//! without losing messages.
//!
//! Both sides treat shared memory as written concurrently by the other:
//! atomics only, and on the kernel side every pointer is checked and every
//! loop bounded, so a hostile process can only lose its own messages.
//! Memory-ordering comments at each fence say which race it closes.

#![cfg_attr(not(any(feature = "std", feature = "testing", test)), no_std)]

pub mod host;
mod ids;
pub mod recv;
pub mod send;
mod spam;
pub mod stats;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vcores;

pub use host::{ProcDataRef, ProcEvents, ProcOps};
pub use ids::{NO_ID, PcoreId, VcoreId};
pub use send::{post_vcore_event, send_event, send_kernel_event, send_posix_signal};
pub use spam::SPAM_LIST_MAX_LOOPS;
pub use stats::{DropKind, Dropped, EventStats, SpamPath};
pub use vcores::VcoreSet;
