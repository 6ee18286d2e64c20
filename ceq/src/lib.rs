//! CEQ: a coalescing event queue in memory shared between a kernel and an
//! untrusted process — epoll's sticky readiness bits, as a mailbox.
//!
//! Events with the same index coalesce (bitwise OR or addition, per queue)
//! in one entry of a process-provided array; a power-of-two ring of
//! indices tells consumers which entries to look at. The ring is only a
//! hint: when it overflows, consumers scan the array, so a coalesced value
//! is never lost.
//!
//! - [`send`] is the producer half a kernel runs ([`producer`]).
//! - [`Consumer`] (from [`init`] or [`Consumer::new`], `unsafe`: the
//!   queue's arrays are the process's own memory) and [`is_empty`] are the
//!   consumer half ([`consumer`]).
//!
//! The algorithm and layout are Akaros's CEQ (Rhoden, 2015); the layout is
//! in `vcpd_abi::ceq`.

#![cfg_attr(not(any(feature = "testing", test)), no_std)]

pub mod consumer;
pub mod producer;
pub mod stats;

pub use consumer::{Consumer, ConsumerHost, InitError, Spin, init, is_empty};
pub use producer::{NR_MAX_EVENT_TRIES, NR_RING_TRIES, Posted, SendError, send};
pub use stats::{CeqStats, CeqStatsSnapshot};
