//! The process model: what adopting the event-delivery crates takes.

pub mod address_space;
pub mod heap;
pub mod proc_ops;
#[allow(clippy::module_inception)] // the brief's layout: process/process.rs
mod process;
pub mod sched;

pub use self::process::*;
