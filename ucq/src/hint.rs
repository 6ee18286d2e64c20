//! Cache hints.

/// Asks the CPU for the cache line holding `p` in exclusive state, about
/// to be written: the UCQ head line (both indices) is read and then
/// atomically written by whoever touches it, and fetching it for writing
/// at once saves the round trip of upgrading a shared copy (the other side
/// has usually just written it). A hint only: no architectural effect.
#[inline(always)]
pub(crate) fn prefetch_write<T>(p: &T) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    // SAFETY: PREFETCHW only hints the cache; it never faults, reads or
    // writes memory architecturally (and executes as a NOP on x86_64
    // processors without it). `p` is a live reference anyway.
    unsafe {
        core::arch::asm!("prefetchw [{0}]", in(reg) p as *const T, options(nostack, preserves_flags));
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = p;
}
