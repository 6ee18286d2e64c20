//! Cache hints.

/// Asks the CPU for the cache line holding `p`, to be written: a hint
/// only (PREFETCHW), which reads and writes nothing and never faults,
/// whatever the address. A no-op elsewhere than on x86_64, and under loom
/// and Miri (which model no caches and run no inline assembly).
#[inline(always)]
pub(crate) fn prefetch_write(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    // SAFETY: PREFETCHW has no architectural effect and never faults, for
    // any address (x86_64 processors without it execute it as a NOP); the
    // asm touches no register or memory the compiler relies on.
    unsafe {
        core::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
    let _ = p;
}
