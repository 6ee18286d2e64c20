//! The process lock a [`VcoreSet`](super::VcoreSet) takes.
//!
//! Any [`lock_api::RawMutex`] will do, so a kernel can plug in the lock it
//! already has (for example one that also disables interrupts, when an
//! interrupt handler may run a transition). The default is `spin`'s mutex.
//! Under `cfg(loom)` the default is a spin lock on loom's atomics, so the
//! model checker sees every acquisition.

/// A raw mutual-exclusion lock.
///
/// # Safety
/// `lock` must not return while another caller holds the lock, and
/// `unlock` must release it with release ordering (a later `lock` sees
/// everything written before the `unlock`).
pub unsafe trait RawLock {
    /// A new, unlocked lock.
    fn new_unlocked() -> Self;
    /// Blocks until the lock is held by the caller.
    fn lock(&self);
    /// Releases the lock.
    ///
    /// # Safety
    /// The caller holds the lock.
    unsafe fn unlock(&self);
}

// SAFETY: `lock_api::RawMutex` makes the same promises (its own `unsafe
// trait` contract).
unsafe impl<T: lock_api::RawMutex> RawLock for T {
    fn new_unlocked() -> Self {
        T::INIT
    }
    fn lock(&self) {
        lock_api::RawMutex::lock(self);
    }
    unsafe fn unlock(&self) {
        // SAFETY: the caller holds the lock (our own contract).
        unsafe { lock_api::RawMutex::unlock(self) }
    }
}

/// The lock a `VcoreSet` uses unless told otherwise.
#[cfg(not(loom))]
pub type DefaultLock = spin::Mutex<()>;

/// The lock a `VcoreSet` uses unless told otherwise (loom's twin).
#[cfg(loom)]
pub type DefaultLock = LoomLock;

/// A test-and-set lock on loom's atomics (loom's own `Mutex` has no raw
/// form): spinning yields to the model checker.
#[cfg(loom)]
#[derive(Debug)]
pub struct LoomLock(loom::sync::atomic::AtomicBool);

// SAFETY: a compare-and-swap from false to true with acquire ordering
// admits one holder at a time; the release store hands the lock back.
#[cfg(loom)]
unsafe impl RawLock for LoomLock {
    fn new_unlocked() -> Self {
        Self(loom::sync::atomic::AtomicBool::new(false))
    }
    fn lock(&self) {
        use loom::sync::atomic::Ordering;
        while self
            .0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            loom::thread::yield_now();
        }
    }
    unsafe fn unlock(&self) {
        self.0.store(false, loom::sync::atomic::Ordering::Release);
    }
}
