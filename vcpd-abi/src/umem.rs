//! User memory: every address read from shared memory is an allegation.
//!
//! The kernel reaches process memory only through [`UserMemory`], a trait
//! the host kernel implements: it checks that a range is writable memory of
//! the current process and translates it to a pointer the kernel may use.
//! [`UserMemoryExt::user_ref`] is the one place that turns a checked address
//! into a typed reference, and it only does so for [`SharedMem`] types:
//! types made entirely of atomics and [`Racy`](crate::sync::Racy) cells, for
//! which a shared reference stays sound while the process writes anything
//! to the same bytes.
//!
//! # The process's own memory
//!
//! The process side (the consumers in `ucq`, `ceq`, `evbitmap` and
//! `event-core`'s receive half) runs *in* the process and follows the
//! addresses it finds in its own shared structures without a
//! [`UserMemory`] check, as C code does. Every such trust is claimed once,
//! by an `unsafe` constructor whose `# Safety` section refers here
//! (`ucq::init`, `ucq::Consumer::new`, `ceq::init`, `ceq::Consumer::new`).
//! Memory is **the process's own memory**, for a structure and for as
//! long as that structure is in use, when all of the following hold:
//!
//! 1. It is mapped readable and writable in the address space the code
//!    runs in, at the very address recorded (user address = pointer), and
//!    is suitably aligned for the types stored there.
//! 2. It stays so for as long as the structure is in use, by the kernel or
//!    by any vcore, not merely for a Rust borrow: the addresses escape into
//!    shared memory, where no lifetime reaches. Memory leaves only through
//!    an explicit hand-back (e.g. `ucq::ConsumerHost::free_page`) made when
//!    the protocol says no one can reach it any more.
//! 3. It is used for nothing else meanwhile: it holds only [`SharedMem`]
//!    values of this ABI, so writes by the kernel or other vcores never
//!    invalidate a reference and never corrupt unrelated data.
//! 4. Every address stored in it that the process side follows was written
//!    by the process's own set-up code under this same promise, or by a
//!    kernel that checked it as this process's memory ([`UserMemory`]).
//!    Code that writes other values there (a corrupted process) voids the
//!    promise; the *kernel* side never relies on it.
//!
//! Safe code can therefore never make the process side dereference an
//! address of its choosing: the first step always passes an `unsafe` door.

use core::mem::{align_of, size_of};
use core::ptr::NonNull;

/// Access to the current process's user memory.
///
/// # Safety
/// When [`translate`](Self::translate) returns `Some(p)` for `(addr, len)`:
/// - `p` points to `len` bytes that are valid for reads and writes for as
///   long as the `&self` borrow used for the call lasts (the host keeps them
///   mapped, e.g. by holding the address space for the duration of a send);
/// - those bytes belong to the current process and hold nothing the kernel
///   relies on: the process may write anything there at any time;
/// - `p` has the same alignment modulo 4096 as `addr`.
///
/// It must return `None` for any range not entirely inside the process's
/// writable user memory, including ranges that wrap around the address space.
pub unsafe trait UserMemory {
    /// Checks `[addr, addr + len)` and returns a kernel pointer to it.
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>>;
}

// SAFETY: forwards to the referenced implementation, which keeps its promises.
unsafe impl<M: UserMemory + ?Sized> UserMemory for &M {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        (**self).translate(addr, len)
    }
}

/// Types a shared reference to user memory may have.
///
/// # Safety
/// Outside `cfg(loom)`: every byte of the type is inside an atomic or a
/// [`Racy`](crate::sync::Racy) cell (padding aside), and any bytes form a
/// valid value. Then a `&Self` remains sound while another party writes
/// arbitrary bytes to the same memory, and all-zero memory is a valid value.
/// Under `cfg(loom)` the host must only hand out addresses of values
/// actually constructed as `Self`.
pub unsafe trait SharedMem {}

/// Typed, checked access to user memory. Implemented for every
/// [`UserMemory`]; not meant to be implemented by hand.
pub trait UserMemoryExt: UserMemory {
    /// A reference to the `T` at user address `addr`, or `None` if the
    /// address is null, misaligned for `T`, or not entirely writable user
    /// memory of the current process.
    #[inline]
    fn user_ref<T: SharedMem>(&self, addr: usize) -> Option<&T> {
        if addr == 0 || addr % align_of::<T>() != 0 {
            return None;
        }
        let p = self.translate(addr, size_of::<T>())?;
        if p.as_ptr() as usize % align_of::<T>() != 0 {
            return None;
        }
        // SAFETY: `translate` promised `size_of::<T>()` valid bytes for the
        // lifetime of `&self`; the pointer is aligned (checked above); and
        // `T: SharedMem` makes a shared reference sound under concurrent
        // writes by the process and valid for any bytes found there.
        Some(unsafe { p.cast::<T>().as_ref() })
    }

    /// The `n` `T`s at user address `addr` as one slice, checked as a whole
    /// once (so an index into it needs no further check), or `None` if the
    /// address is null or misaligned, `n` is zero, the size overflows, or
    /// the range is not entirely writable user memory.
    #[inline]
    fn user_slice<T: SharedMem>(&self, addr: usize, n: usize) -> Option<&[T]> {
        if addr == 0 || n == 0 || addr % align_of::<T>() != 0 {
            return None;
        }
        let len = n.checked_mul(size_of::<T>())?;
        let p = self.translate(addr, len)?;
        if p.as_ptr() as usize % align_of::<T>() != 0 {
            return None;
        }
        // SAFETY: `translate` promised `len` = `n * size_of::<T>()` valid
        // bytes for the lifetime of `&self`; the pointer is aligned (checked
        // above); `T: SharedMem` makes shared references sound under the
        // process's concurrent writes and valid for any bytes.
        Some(unsafe { core::slice::from_raw_parts(p.cast::<T>().as_ptr(), n) })
    }

    /// A reference to element `index` of an array of `T` at user address
    /// `base`. Overflowing address arithmetic yields `None`, not a wrap.
    #[inline]
    fn user_elem<T: SharedMem>(&self, base: usize, index: usize) -> Option<&T> {
        let addr = index
            .checked_mul(size_of::<T>())
            .and_then(|off| base.checked_add(off))?;
        self.user_ref(addr)
    }
}

impl<M: UserMemory + ?Sized> UserMemoryExt for M {}

macro_rules! shared_mem {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: composed only of atomics (`SharedBool` is an atomic
            // byte) and `Racy` cells of `Pod` data; see the type's fields.
            unsafe impl SharedMem for $t {}
        )*
    };
}

shared_mem!(
    crate::sync::AtomicU8,
    crate::sync::AtomicU16,
    crate::sync::AtomicU32,
    crate::sync::AtomicI32,
    crate::sync::AtomicU64,
    crate::sync::AtomicUsize,
    crate::sync::SharedBool,
    crate::msg::SharedEventMsg,
    crate::ucq::Ucq,
    crate::ucq::UcqPageHeader,
    crate::ucq::MsgContainer,
    crate::ucq::UcqPage,
    crate::ceq::Ceq,
    crate::ceq::CeqEvent,
    crate::evbitmap::EvBitmap,
    crate::mbox::EventMbox,
    crate::evq::EventQueue,
    crate::evq::EventQueueBig,
    crate::vcpd::UserContext,
    crate::vcpd::AncillaryState,
    crate::vcpd::Vcpd,
);

// SAFETY: an array of `SharedMem` values is `SharedMem`.
unsafe impl<T: SharedMem, const N: usize> SharedMem for [T; N] {}
// SAFETY: a `repr(C)` struct of an atomic array and a `SharedMem` array.
unsafe impl<const V: usize> SharedMem for crate::procdata::ProcDataN<V> {}
