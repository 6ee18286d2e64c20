//! A ready-made [`UcqLocks`]: a fixed table of spin locks indexed by a hash
//! of the UCQ address.

use crate::host::UcqLocks;

#[cfg(loom)]
type Lock = loom::sync::Mutex<()>;
#[cfg(not(loom))]
type Lock = spin::Mutex<()>;

/// `N` locks shared by all UCQs of a process (or of the whole kernel); two
/// UCQs that hash alike only contend, they never deadlock, because the lock
/// is never held while taking another one.
pub struct HashLocks<const N: usize> {
    locks: [Lock; N],
}

impl<const N: usize> HashLocks<N> {
    /// A table of `N` unlocked locks (usable in a `static`).
    ///
    /// # Panics
    /// If `N` is zero.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        assert!(N > 0, "HashLocks needs at least one lock");
        Self {
            locks: [const { Lock::new(()) }; N],
        }
    }

    /// A table of `N` unlocked locks (loom's locks are not `const`).
    ///
    /// # Panics
    /// If `N` is zero.
    #[cfg(loom)]
    pub fn new() -> Self {
        assert!(N > 0, "HashLocks needs at least one lock");
        Self {
            locks: core::array::from_fn(|_| Lock::default()),
        }
    }

    fn index(key: usize) -> usize {
        // UCQs are at least 8-byte aligned and usually embedded in larger
        // structs: drop the low bits, then mix (Fibonacci hashing).
        (((key as u64 >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize) % N
    }
}

impl<const N: usize> Default for HashLocks<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::fmt::Debug for HashLocks<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "HashLocks<{N}>")
    }
}

impl<const N: usize> UcqLocks for HashLocks<N> {
    fn with_ucq_lock<R>(&self, key: usize, f: impl FnOnce() -> R) -> R {
        let lock = &self.locks[Self::index(key)];
        #[cfg(loom)]
        let _guard = lock.lock().unwrap();
        #[cfg(not(loom))]
        let _guard = lock.lock();
        f()
    }
}
