//! [`UserAddr`]: a user address, typed by what it claims to point at.
//!
//! A user address is an allegation (the process chose it, or may rewrite
//! it at any moment). `UserAddr<T>` carries the claimed type so APIs say
//! what they expect, but the only way from it to a reference is
//! [`UserAddr::check`] / [`UserAddr::check_slice`], which ask the host's
//! [`UserMemory`] first.

use core::fmt;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};

use crate::umem::{SharedMem, UserMemory, UserMemoryExt};

/// ```
/// use vcpd_abi::arena::UserArena;
/// use vcpd_abi::{EventQueue, UserAddr};
///
/// let process = UserArena::new(4096);
/// let q = process.alloc(size_of::<EventQueue>(), 8).unwrap();
/// let addr = UserAddr::<EventQueue>::new(q);
/// assert!(addr.check(&process).is_some());
/// assert!(UserAddr::<EventQueue>::new(q + 4).check(&process).is_none(), "misaligned");
/// assert!(UserAddr::<EventQueue>::NULL.check(&process).is_none());
/// ```
/// A user address alleged to hold a `T`. Plain data: copying it or doing
/// arithmetic on it is harmless; dereferencing needs [`check`](Self::check).
#[repr(transparent)]
pub struct UserAddr<T> {
    addr: usize,
    _points_at: PhantomData<fn() -> T>,
}

impl<T> UserAddr<T> {
    /// The null address.
    pub const NULL: Self = Self::new(0);

    /// Wraps a raw user address.
    #[inline]
    pub const fn new(addr: usize) -> Self {
        Self {
            addr,
            _points_at: PhantomData,
        }
    }

    /// The raw address.
    #[inline]
    pub const fn get(self) -> usize {
        self.addr
    }

    /// Whether it is null.
    #[inline]
    pub const fn is_null(self) -> bool {
        self.addr == 0
    }

    /// The same address, claimed to hold a `U`.
    #[inline]
    pub const fn cast<U>(self) -> UserAddr<U> {
        UserAddr::new(self.addr)
    }

    /// The address `bytes` further on, claimed to hold a `U` (`None` on
    /// overflow: a user address never wraps).
    #[inline]
    pub const fn byte_add<U>(self, bytes: usize) -> Option<UserAddr<U>> {
        match self.addr.checked_add(bytes) {
            Some(a) => Some(UserAddr::new(a)),
            None => None,
        }
    }

    /// Whether the address is aligned for `T`.
    #[inline]
    pub const fn is_aligned(self) -> bool {
        self.addr % align_of::<T>() == 0
    }
}

impl<T: SharedMem> UserAddr<T> {
    /// A reference to the `T` here, or `None` if the address is null,
    /// misaligned for `T`, or not entirely writable user memory of the
    /// current process (as `mem` says).
    #[inline]
    pub fn check<M: UserMemory + ?Sized>(self, mem: &M) -> Option<&T> {
        mem.user_ref(self.addr)
    }

    /// A slice of `n` consecutive `T`s starting here, checked as one range.
    pub fn check_slice<M: UserMemory + ?Sized>(self, mem: &M, n: usize) -> Option<&[T]> {
        if self.addr == 0 || !self.is_aligned() {
            return None;
        }
        let len = n.checked_mul(size_of::<T>())?;
        let p = mem.translate(self.addr, len)?;
        if p.as_ptr().addr() % align_of::<T>() != 0 {
            return None;
        }
        // SAFETY: `translate` promised `len` bytes valid for reads and
        // writes for the lifetime of the `&M` borrow; the pointer is
        // aligned (checked above); and `T: SharedMem` keeps a shared
        // reference sound while the process writes anything there.
        Some(unsafe { core::slice::from_raw_parts(p.cast::<T>().as_ptr(), n) })
    }
}

impl<T> Clone for UserAddr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for UserAddr<T> {}

impl<T> PartialEq for UserAddr<T> {
    fn eq(&self, other: &Self) -> bool {
        self.addr == other.addr
    }
}

impl<T> Eq for UserAddr<T> {}

impl<T> fmt::Debug for UserAddr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserAddr({:#x})", self.addr)
    }
}

impl<T> fmt::Display for UserAddr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.addr)
    }
}

impl<T> From<UserAddr<T>> for usize {
    fn from(a: UserAddr<T>) -> usize {
        a.addr
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::arena::UserArena;
    use crate::evq::EventQueue;
    use crate::sync::AtomicU64;

    #[test]
    fn check_refuses_null_misaligned_and_foreign_addresses() {
        let arena = UserArena::new(4096);
        let q = arena.alloc_zeroed::<EventQueue>().unwrap();
        let addr = UserAddr::<EventQueue>::new((q as *const EventQueue).addr());
        assert!(addr.check(&arena).is_some());
        assert!(UserAddr::<EventQueue>::NULL.check(&arena).is_none());
        assert!(
            addr.byte_add::<EventQueue>(4)
                .unwrap()
                .check(&arena)
                .is_none()
        );
        let outside = UserAddr::<EventQueue>::new((&arena as *const UserArena).addr() & !7);
        assert!(outside.check(&arena).is_none());
    }

    #[test]
    fn check_slice_checks_the_whole_range() {
        let arena = UserArena::new(4096);
        let base = arena.alloc(4096, 4096).unwrap();
        let a = UserAddr::<AtomicU64>::new(base);
        assert_eq!(a.check_slice(&arena, 512).map(<[_]>::len), Some(512));
        assert!(a.check_slice(&arena, 513).is_none());
        assert!(a.check_slice(&arena, usize::MAX).is_none());
        assert!(
            UserAddr::<AtomicU64>::new(usize::MAX - 7)
                .check_slice(&arena, 2)
                .is_none()
        );
    }
}
