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
//! # A first delivered event
//!
//! A kernel keeps a [`ProcEvents`] in each process and implements
//! [`ProcOps`] (see `examples/hello_host.rs` for a complete std host);
//! `testing::ToyHost` (feature `testing`) is the smallest one:
//!
//! ```
//! use event_core::abi::{EventMsg, EventQueue, EvqFlags, UserAddr};
//! use event_core::recv::setup;
//! use event_core::testing::ToyHost;
//! use event_core::{VcoreId, send_event};
//!
//! let host = ToyHost::new();
//! // The process: a queue that spams its messages to public VCPD
//! // mailboxes (vcore 1 preferred) and interrupts the vcore.
//! let (q, queue) = host.alloc::<EventQueue>();
//! let v1 = VcoreId::new(1).unwrap();
//! setup::init_evq(queue, UserAddr::NULL, EvqFlags::SPAM_PUBLIC | EvqFlags::IPI, v1).unwrap();
//! // The kernel sends.
//! send_event(&host, q, &EventMsg::new(7).with_arg2(99), VcoreId::ZERO).unwrap();
//! assert_eq!(host.ipis(), [1]);
//! // Vcore 1, interrupted, handles its events.
//! let rx = host.receiver();
//! rx.handlers().register(7, |_, v, msg, _| assert_eq!((v.get(), msg.ev_arg2), (1, 99)), 0).unwrap();
//! assert_eq!(rx.handle_events(v1), 1);
//! ```
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
//! | `testing` | `testing`: std-only test support (`ToyHost`, the host conformance check `check_host`, `thread_cpu_index`), and the mailbox crates' own | no |
//!
//! A kernel that never runs process code may use `default-features = false,
//! features = ["kernel"]`; a process runtime, `features = ["process"]`.
//!
//! # Guides
//!
//! - [`flags_guide`]: for each event-queue flag, who is alerted, where the
//!   message lands and who must drain what.

#![cfg_attr(not(any(feature = "testing", test)), no_std)]
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
pub use stats::{BadAddr, Counter, DropKind, Dropped, EventStats, SpamPath};
#[cfg(feature = "kernel")]
pub use vcores::VcoreSet;
