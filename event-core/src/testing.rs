//! Test support (feature `testing`, std only): not part of the
//! kernel-facing product.
//!
//! - [`thread_cpu_index`]: a `cpu_index` for hosts whose "CPUs" are
//!   threads.
//! - [`check_host`]: a conformance check a kernel author runs against their
//!   own [`ProcOps`](crate::ProcOps) (in a std test build of their host, or a hosted
//!   simulation of it), reporting in words what is wrong.
//! - [`ToyHost`]: the smallest complete host, for doctests and first
//!   experiments (no threads: nothing runs the vcores unless you do).

/// A distinct index for each thread that asks, stable for the thread's
/// life: a [`VcoreSet`](crate::VcoreSet)'s `cpu_index` for hosts whose
/// "CPUs" are threads (under loom, model threads).
pub fn thread_cpu_index() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    #[cfg(not(loom))]
    std::thread_local!(static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed));
    #[cfg(loom)]
    loom::thread_local!(static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed));
    INDEX.with(|i| *i)
}

#[cfg(not(loom))]
mod hosted;
#[cfg(not(loom))]
pub use hosted::{HostReport, TOY_VCORES, ToyHost, check_host};
