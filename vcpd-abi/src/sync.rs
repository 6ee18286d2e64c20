//! The atomics every shared structure is built from.
//!
//! Normally these are `core`'s atomics. Under `cfg(loom)` they are loom's
//! model-checked twins, so the same protocol code runs inside `loom::model`.
//! Loom's atomics are not layout-compatible with `core`'s, which is why the
//! layout assertions in this crate only hold under `cfg(not(loom))`.
//!
//! Two wrappers complete the set:
//! - [`SharedBool`]: a C `bool` in shared memory. It is an `AtomicU8`, never
//!   an `AtomicBool`: the other party may store any byte there, and a `bool`
//!   holding 2 is undefined behaviour in Rust. Any non-zero byte reads as true.
//! - [`Racy`]: plain data (saved register contexts) that only the owner of a
//!   vcore interprets, accessed with volatile copies and never by reference.

use core::fmt;

#[cfg(not(loom))]
pub use core::sync::atomic::{
    AtomicI32, AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(loom)]
pub use loom::sync::atomic::{
    AtomicI32, AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

/// Hint for a spin-wait iteration: `core::hint::spin_loop` on hardware, a
/// yield to the model checker under loom (a spinning thread must let the
/// thread it waits for run, or loom reports a livelock).
#[inline]
pub fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// A C `bool` in memory another party writes: one byte, any non-zero value
/// is `true`.
#[repr(transparent)]
pub struct SharedBool(AtomicU8);

impl SharedBool {
    /// A flag with the given value.
    pub fn new(value: bool) -> Self {
        Self(AtomicU8::new(u8::from(value)))
    }

    /// Loads the flag; any non-zero byte counts as set.
    #[inline]
    pub fn load(&self, order: Ordering) -> bool {
        self.0.load(order) != 0
    }

    /// Stores the flag as 0 or 1.
    #[inline]
    pub fn store(&self, value: bool, order: Ordering) {
        self.0.store(u8::from(value), order);
    }

    /// Swaps in `value`, returning whether the flag was set.
    #[inline]
    pub fn swap(&self, value: bool, order: Ordering) -> bool {
        self.0.swap(u8::from(value), order) != 0
    }

    /// The underlying byte, for code that must see or write the raw value
    /// (tests that play a hostile process).
    #[inline]
    pub fn as_raw(&self) -> &AtomicU8 {
        &self.0
    }
}

impl Default for SharedBool {
    fn default() -> Self {
        Self::new(false)
    }
}

impl fmt::Debug for SharedBool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.load(Ordering::Relaxed), f)
    }
}

/// Plain-old-data: every bit pattern is a valid value and no byte is
/// padding. `bytemuck`'s derive checks both at compile time, so [`Racy`]
/// needs no hand-written `unsafe impl` per register layout.
pub use bytemuck::Pod;

#[cfg(not(loom))]
type Cell<T> = core::cell::UnsafeCell<T>;
#[cfg(loom)]
type Cell<T> = loom::cell::UnsafeCell<T>;

/// Plain data in shared memory, read and written only by whole volatile
/// copies, never through a reference to its contents.
///
/// Reads may observe a torn value if the other party writes concurrently;
/// because `T: Pod`, a torn value is still a valid `T`, just meaningless.
/// (`Pod` also rules out padding, so a write never copies uninitialised
/// bytes into memory the other party reads.)
#[cfg_attr(not(loom), repr(transparent))]
pub struct Racy<T: Pod>(Cell<T>);

// SAFETY: all access goes through volatile copies of a `Pod` value; a
// concurrent writer can at worst make a read see a torn (but valid) value.
unsafe impl<T: Pod> Sync for Racy<T> {}
// SAFETY: `Racy` owns a `Pod` value, which carries no thread affinity.
unsafe impl<T: Pod> Send for Racy<T> {}

impl<T: Pod> Racy<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Self(Cell::new(value))
    }

    /// A volatile copy of the current contents.
    #[inline]
    pub fn read(&self) -> T {
        #[cfg(not(loom))]
        {
            // SAFETY: the cell is valid for reads for `&self`'s lifetime and
            // `T: Pod` makes any bytes found there a valid `T`.
            unsafe { self.0.get().read_volatile() }
        }
        #[cfg(loom)]
        {
            // SAFETY: as above; loom additionally checks for data races.
            self.0.with(|p| unsafe { p.read_volatile() })
        }
    }

    /// Overwrites the contents with a volatile copy of `value`.
    #[inline]
    pub fn write(&self, value: T) {
        #[cfg(not(loom))]
        {
            // SAFETY: the cell is valid for writes for `&self`'s lifetime and
            // no reference to its contents is ever handed out.
            unsafe { self.0.get().write_volatile(value) }
        }
        #[cfg(loom)]
        {
            // SAFETY: as above; loom additionally checks for data races.
            self.0.with_mut(|p| unsafe { p.write_volatile(value) })
        }
    }
}

impl<T: Pod + Default> Default for Racy<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: Pod> fmt::Debug for Racy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Racy(..)")
    }
}

#[cfg(loom)]
extern crate std;

/// Under loom: memory that must not be touched. A model's host calls
/// [`poison::free`] where a real host would unmap a page, and consumer code
/// calls [`poison::keep_out`] on a page it hands back to the producer (a
/// recycled UCQ page, until consumers follow a link to it again). Consumer
/// code that follows trusted addresses calls [`poison::check`] before
/// touching them, so an access after free (or to a page no claim covers)
/// fails the model instead of reading a still-allocated `Box`, which plain
/// loom would let pass. The registry is per loom execution.
#[cfg(loom)]
pub mod poison {
    use std::sync::Mutex;
    use std::vec::Vec;

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Why {
        Freed,
        KeptOut,
    }

    loom::lazy_static! {
        static ref POISONED: Mutex<Vec<(usize, usize, Why)>> = Mutex::new(Vec::new());
    }

    fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
        a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
    }

    fn find(addr: usize, len: usize, why: Option<Why>) -> bool {
        POISONED
            .lock()
            .unwrap()
            .iter()
            .any(|&(a, l, w)| overlaps((a, l), (addr, len)) && why.is_none_or(|y| y == w))
    }

    /// Marks `[addr, addr + len)` freed (unmapped by the host).
    pub fn free(addr: usize, len: usize) {
        POISONED.lock().unwrap().push((addr, len, Why::Freed));
    }

    /// Marks `[addr, addr + len)` out of bounds for consumers.
    pub fn keep_out(addr: usize, len: usize) {
        POISONED.lock().unwrap().push((addr, len, Why::KeptOut));
    }

    /// Lifts [`keep_out`] from `[addr, addr + len)` (freed stays freed).
    pub fn let_in(addr: usize, len: usize) {
        POISONED
            .lock()
            .unwrap()
            .retain(|&(a, l, w)| w == Why::Freed || !overlaps((a, l), (addr, len)));
    }

    /// Whether any byte of `[addr, addr + len)` was freed.
    pub fn is_freed(addr: usize, len: usize) -> bool {
        find(addr, len, Some(Why::Freed))
    }

    /// Fails the model if any byte of `[addr, addr + len)` was freed or is
    /// kept out.
    ///
    /// # Panics
    /// On such an access.
    pub fn check(addr: usize, len: usize) {
        assert!(
            !find(addr, len, Some(Why::Freed)),
            "access after free: {addr:#x}..{:#x}",
            addr.wrapping_add(len)
        );
        assert!(
            !find(addr, len, Some(Why::KeptOut)),
            "consumer touched a page it holds no claim on: {addr:#x}"
        );
    }
}
