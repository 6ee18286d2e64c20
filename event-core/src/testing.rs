//! Test support for hosts built on std threads (feature `testing`): not
//! part of the kernel-facing product.

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
