//! UCQ: an unbounded, multi-producer multi-consumer queue of event messages
//! in memory shared between a kernel and an untrusted process.
//!
//! - [`send`] is the producer half a kernel runs ([`producer`]); it checks
//!   every address through the host's [`UserMemory`](vcpd_abi::UserMemory),
//!   never panics, and never loops on a value the process controls.
//! - [`Consumer`] (from [`init`] or [`Consumer::new`], both `unsafe`: they
//!   claim the queue is the process's own memory) and [`is_empty`] are the
//!   consumer half a process's vcores run ([`consumer`]).
//! - [`host`] holds the small traits a kernel or runtime implements;
//!   [`HashLocks`] is a ready-made producer lock table.
//!
//! The algorithm and its shared layout are Akaros's UCQ (Rhoden, 2011);
//! the layout is in `vcpd_abi::ucq`.

#![cfg_attr(not(any(feature = "testing", test)), no_std)]

pub mod consumer;
mod hint;
pub mod host;
pub mod locks;
pub mod producer;
pub mod stats;

#[cfg(all(any(feature = "testing", test), not(loom)))]
pub mod arena_host;

pub use consumer::{Consumer, InitError, init, is_empty};
pub use host::{ConsumerHost, ProducerHost, UCQ_PAGE_BUDGET, UcqLocks, UserPageAlloc};
pub use locks::HashLocks;
pub use producer::{SendError, send};
pub use stats::{UCQ_STAT_SHARDS, UcqStats, UcqStatsSnapshot};

#[cfg(all(any(feature = "testing", test), not(loom)))]
pub use arena_host::ArenaHost;
