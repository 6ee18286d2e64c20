//! The consumers' lock word (`u_lock[2]` in the UCQ and CEQ heads).
//!
//! Consumers of one mailbox (vcores of one process) serialise their rare
//! slow paths with a spin lock that lives in the mailbox itself. Its format
//! is part of the ABI, so every consumer implementation agrees on it:
//! `u_lock[0]` is 0 when free and `holder + 1` while held (so a waiter can
//! tell which vcore to help if the holder was preempted); `u_lock[1]` is
//! reserved (zero). All-zero memory is an unlocked lock. The kernel never
//! touches it.

use crate::sync::{AtomicU32, Ordering};

/// A view of a `u_lock[2]` word pair.
#[derive(Debug, Clone, Copy)]
pub struct UserLock<'a>(pub &'a [AtomicU32; 2]);

impl UserLock<'_> {
    /// Spins until the lock is taken for `holder` (e.g. the vcore id),
    /// calling `relax` with the current holder between attempts.
    pub fn lock(&self, holder: u32, mut relax: impl FnMut(Option<u32>)) {
        let me = holder.wrapping_add(1).max(1);
        loop {
            match self.0[0].compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return,
                Err(cur) => relax(cur.checked_sub(1)),
            }
        }
    }

    /// Releases the lock.
    pub fn unlock(&self) {
        self.0[0].store(0, Ordering::Release);
    }

    /// Whether someone holds the lock now (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.0[0].load(Ordering::Acquire) != 0
    }

    /// Resets the lock to unlocked (set-up only, before any consumer runs).
    pub fn init(&self) {
        self.0[0].store(0, Ordering::Relaxed);
        self.0[1].store(0, Ordering::Relaxed);
    }
}
