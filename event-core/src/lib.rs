//! Kernel-to-user event delivery for multicore kernels, after Akaros.
//!
//! The **send side** ([`send_event`], [`send_event_batch`],
//! [`send_kernel_event`], [`post_vcore_event`], [`send_posix_signal`]) is
//! what a kernel calls to deliver an event to a process: it posts into
//! the mailbox the process's event queue names (UCQ, CEQ or bitmap), then
//! alerts a vcore with an indirection and/or an IPI, or *spams* the
//! message to public VCPD mailboxes with the fallback algorithm that never
//! loses a message while vcores yield and get preempted. Everything a kernel must provide is in
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
//! vcore's public mailbox after a preemption, set queues up, yield
//! without losing messages, and block a thread on several queues with a
//! deadline ([`recv::wait`]).
//!
//! Both sides treat shared memory as written concurrently by the other:
//! atomics only, and on the kernel side every pointer is checked and every
//! loop bounded, so a hostile process can only lose its own messages.
//! Memory-ordering comments at each fence say which race it closes.

//!
//! # One dependency
//!
//! A kernel depends on `event-core` alone: the ABI types are re-exported
//! as [`abi`], the mailbox crates as [`ucq`], [`ceq`] and [`evbitmap`].
//!
//! # Features
//!
//! | feature | what it compiles | default |
//! |---|---|---|
//! | `kernel` | the send side ([`send_event`] …), [`ProcOps`], [`vcores`], [`stats`] | yes |
//! | `process` | the receive side, [`recv`] | yes |
//! | `testing` | [`testing`]: std-only helpers for hosts whose "CPUs" are threads (implies `std`) | no |
//! | `std` | nothing of its own; lets the mailbox crates use std in their test support | no |
//!
//! A kernel that never runs process code may use `default-features = false,
//! features = ["kernel"]`; a process runtime, `features = ["process"]`.
//!
//! # Guides
//!
//! - [`flags_guide`]: for each event-queue flag, who is alerted, where the
//!   message lands and who must drain what.

#![cfg_attr(not(any(feature = "std", feature = "testing", test)), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use {ceq, evbitmap, ucq, vcpd_abi as abi};

#[doc = include_str!("../docs/flags.md")]
pub mod flags_guide {}

#[cfg(feature = "kernel")]
mod batch;
#[cfg(feature = "kernel")]
#[cfg_attr(docsrs, doc(cfg(feature = "kernel")))]
pub mod host;
mod ids;
#[cfg(feature = "process")]
#[cfg_attr(docsrs, doc(cfg(feature = "process")))]
pub mod recv;
#[cfg(feature = "kernel")]
#[cfg_attr(docsrs, doc(cfg(feature = "kernel")))]
pub mod send;
#[cfg(feature = "kernel")]
mod spam;
#[cfg(feature = "kernel")]
#[cfg_attr(docsrs, doc(cfg(feature = "kernel")))]
pub mod stats;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
#[cfg(feature = "kernel")]
#[cfg_attr(docsrs, doc(cfg(feature = "kernel")))]
pub mod vcores;

#[cfg(feature = "kernel")]
pub use batch::{BatchDropped, send_event_batch};
#[cfg(feature = "kernel")]
pub use host::{ProcDataRef, ProcEvents, ProcOps};
pub use ids::{NO_ID, PcoreId, VcoreId};
#[cfg(feature = "kernel")]
pub use send::{post_vcore_event, send_event, send_kernel_event, send_posix_signal};
#[cfg(feature = "kernel")]
pub use spam::SPAM_LIST_MAX_LOOPS;
#[cfg(feature = "kernel")]
pub use stats::{BadAddr, DropKind, Dropped, EventStats, SpamPath};
#[cfg(feature = "kernel")]
pub use vcores::VcoreSet;
