//! The consumers' lock word (`u_lock[2]` in the UCQ and CEQ heads).
//!
//! Consumers of one mailbox (vcores of one process) serialise their rare
//! slow paths with a spin lock that lives in the mailbox itself. Its format
//! is Akaros's `spin_pdr_lock`, so a mailbox set up by one library can be
//! consumed by the other: `u_lock[0]` is [`ULOCK_UNLOCKED`] (`0xffffffff`)
//! when free and the holder's vcore id while held (so a waiter can tell
//! which vcore to help if the holder was preempted). `u_lock[1]` is unused
//! on x86 (Akaros keeps room for a no-CAS variant) and set to zero.
//!
//! All-zero memory is therefore a lock *held by vcore 0*: a queue must be
//! set up ([`UserLock::init`], called by the mailbox crates' `init`) before
//! a consumer takes its lock. The kernel never touches the word.

use crate::sync::{AtomicU32, Ordering};

/// `u_lock[0]` of a free lock (Akaros's `SPINPDR_UNLOCKED`).
pub const ULOCK_UNLOCKED: u32 = u32::MAX;

/// A view of a `u_lock[2]` word pair.
#[derive(Debug, Clone, Copy)]
pub struct UserLock<'a>(pub &'a [AtomicU32; 2]);

impl UserLock<'_> {
    /// Spins until the lock is taken for vcore `holder`, calling `relax`
    /// with the current holder between attempts. A `holder` of
    /// [`ULOCK_UNLOCKED`] (not a vcore id) is recorded as `0xfffffffe`, so
    /// the lock still reads as held.
    pub fn lock(&self, holder: u32, mut relax: impl FnMut(Option<u32>)) {
        let me = holder.min(ULOCK_UNLOCKED - 1);
        loop {
            match self.0[0].compare_exchange_weak(
                ULOCK_UNLOCKED,
                me,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(cur) => relax((cur != ULOCK_UNLOCKED).then_some(cur)),
            }
        }
    }

    /// Releases the lock.
    pub fn unlock(&self) {
        self.0[0].store(ULOCK_UNLOCKED, Ordering::Release);
    }

    /// Whether someone holds the lock now (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.0[0].load(Ordering::Acquire) != ULOCK_UNLOCKED
    }

    /// The vcore holding the lock now, if any (a snapshot).
    pub fn holder(&self) -> Option<u32> {
        let cur = self.0[0].load(Ordering::Acquire);
        (cur != ULOCK_UNLOCKED).then_some(cur)
    }

    /// Resets the lock to unlocked (set-up only, before any consumer runs).
    pub fn init(&self) {
        self.0[0].store(ULOCK_UNLOCKED, Ordering::Relaxed);
        self.0[1].store(0, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn akaros_encoding() {
        let words = [AtomicU32::new(0), AtomicU32::new(0)];
        let l = UserLock(&words);
        assert!(l.is_locked(), "zeroed memory is held by vcore 0");
        assert_eq!(l.holder(), Some(0));
        l.init();
        assert_eq!(words[0].load(Ordering::Relaxed), 0xffff_ffff);
        assert!(!l.is_locked());
        // A weak CAS may fail spuriously (Miri does that): a free lock then
        // reports no holder.
        l.lock(3, |h| assert_eq!(h, None, "free lock"));
        assert_eq!(words[0].load(Ordering::Relaxed), 3, "holder's vcore id");
        assert_eq!(l.holder(), Some(3));
        let mut seen = false;
        // A second locker sees the holder; the holder then lets it in.
        l.lock(5, |h| {
            if h == Some(3) {
                seen = true;
                l.unlock();
            }
        });
        assert!(seen);
        assert_eq!(l.holder(), Some(5));
        l.unlock();
        l.lock(u32::MAX, |h| assert_eq!(h, None, "free lock"));
        assert!(
            l.is_locked(),
            "the unlocked value is never recorded as a holder"
        );
    }
}
