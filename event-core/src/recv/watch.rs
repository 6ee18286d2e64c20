//! Watched queues: event queues whose own mailbox `handle_events` looks
//! at, so that a bare `IPI` alert (no indirection) reaches the queue.
//!
//! A queue with `IPI` but not `INDIR` notifies its chosen vcore, whose
//! `handle_events` drains only that vcore's VCPD mailboxes: the queue's
//! own mailbox is nobody's business. Registering the queue as watched in
//! the process's [`HandlerTable`] makes every `handle_events` (after the
//! VCPD mailboxes) look at each watched queue and, when its mailbox is not
//! empty, handle it with [`Receiver::handle_event_q`]: drain and dispatch,
//! or call its `ev_handler` (a [`WaitQueue`](super::wait::WaitQueue)'s
//! wakeup). The look comes after `handle_events` clears `notif_pending`,
//! whose swap synchronizes with the kernel's set after the post: a
//! message that led to the notification is seen (or was already taken).
//!
//! The registry is a fixed array of queue addresses, read without a lock
//! on every `handle_events` (one load when nothing is watched). Watch a
//! queue at set-up, before relying on it.

use core::fmt;
// Not `vcpd_abi::sync`: the registry is set-up state, like the handler
// table's lock; loom models need not explore its interleavings.
use core::sync::atomic::{AtomicUsize, Ordering};

use vcpd_abi::{EventMbox, EventQueue};

use super::{HandlerTable, Receiver, VcoreRuntime};
use crate::ids::VcoreId;

/// Queues a [`HandlerTable`] can watch.
pub const WATCHED_QUEUES: usize = 16;

/// The watched-queue registry of a [`HandlerTable`].
pub(super) struct WatchList {
    /// Non-zero slots.
    count: AtomicUsize,
    /// User addresses of watched queues; 0 = free.
    slots: [AtomicUsize; WATCHED_QUEUES],
}

impl WatchList {
    pub(super) const fn new() -> Self {
        Self {
            count: AtomicUsize::new(0),
            slots: [const { AtomicUsize::new(0) }; WATCHED_QUEUES],
        }
    }

    fn for_each(&self, mut f: impl FnMut(usize)) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        for s in &self.slots {
            match s.load(Ordering::Acquire) {
                0 => {}
                addr => f(addr),
            }
        }
    }
}

impl fmt::Debug for WatchList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        self.for_each(|a| {
            l.entry(&format_args!("{a:#x}"));
        });
        l.finish()
    }
}

/// Why a queue could not be watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchError {
    /// Already [`WATCHED_QUEUES`] queues are watched.
    Full,
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => write!(f, "{WATCHED_QUEUES} queues are watched already"),
        }
    }
}

impl core::error::Error for WatchError {}

fn addr_of(ev_q: &EventQueue) -> usize {
    (ev_q as *const EventQueue).expose_provenance()
}

impl<R> HandlerTable<R> {
    /// Makes every `handle_events` look at `ev_q` (the process's own queue,
    /// set up with a mailbox of its own). Watching a queue twice is
    /// watching it once.
    pub fn watch(&self, ev_q: &'static EventQueue) -> Result<(), WatchError> {
        // SAFETY: a `'static` queue outlives every receiver.
        unsafe { self.watch_unchecked(ev_q) }
    }

    /// [`watch`](Self::watch) for a queue that is not `'static`.
    ///
    /// # Safety
    /// `ev_q` must stay alive, and set up as an event queue, until
    /// [`unwatch`](Self::unwatch) has returned for it and no vcore is still
    /// in a `handle_events` that began before, or for as long as any
    /// [`Receiver`] over this table is used.
    pub unsafe fn watch_unchecked(&self, ev_q: &EventQueue) -> Result<(), WatchError> {
        let addr = addr_of(ev_q);
        let w = &self.watched;
        if w.slots.iter().any(|s| s.load(Ordering::Acquire) == addr) {
            return Ok(());
        }
        for s in &w.slots {
            if s.compare_exchange(0, addr, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                w.count.fetch_add(1, Ordering::Release);
                return Ok(());
            }
        }
        Err(WatchError::Full)
    }

    /// Stops watching `ev_q`; `false` if it was not watched.
    pub fn unwatch(&self, ev_q: &EventQueue) -> bool {
        let addr = addr_of(ev_q);
        let w = &self.watched;
        for s in &w.slots {
            if s.compare_exchange(addr, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                w.count.fetch_sub(1, Ordering::Release);
                return true;
            }
        }
        false
    }

    /// Whether `ev_q` is watched.
    pub fn is_watched(&self, ev_q: &EventQueue) -> bool {
        let addr = addr_of(ev_q);
        let mut found = false;
        self.watched.for_each(|a| found |= a == addr);
        found
    }
}

impl<R: VcoreRuntime> Receiver<'_, R> {
    /// Handles every watched queue whose mailbox is not empty; returns the
    /// messages drained (0 for queues with an `ev_handler`).
    pub(super) fn handle_watched(&self, vcoreid: VcoreId) -> usize {
        let mut n = 0;
        self.handlers.watched.for_each(|addr| {
            // SAFETY: only `watch_unchecked` stores addresses here: each is
            // a live event queue for as long as its caller promised, which
            // covers this receiver's use.
            let ev_q = unsafe { &*core::ptr::with_exposed_provenance::<EventQueue>(addr) };
            let mbox = ev_q.ev_mbox.load(vcpd_abi::sync::Ordering::Acquire);
            if mbox != 0 && !self.mbox_is_empty(self.own::<EventMbox>(mbox)) {
                n += self.handle_event_q(vcoreid, ev_q);
            }
        });
        n
    }
}
