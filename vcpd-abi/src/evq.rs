//! Event queues: where and how the kernel delivers a kind of event.

use crate::flags::EvqFlags;
use crate::mbox::EventMbox;
use crate::sync::{AtomicI32, AtomicU32, AtomicUsize, Ordering, SharedBool};

/// An event queue (`struct event_queue`, the "slim" form): it points at a
/// mailbox elsewhere (or at none, meaning "the chosen vcore's VCPD mailbox").
#[repr(C)]
#[derive(Debug, Default)]
pub struct EventQueue {
    /// User address of the mailbox, or 0 for the chosen vcore's VCPD mailbox.
    pub ev_mbox: AtomicUsize,
    /// Raw [`EvqFlags`].
    pub ev_flags: AtomicI32,
    /// An indirection for this queue is outstanding (throttling).
    pub ev_alert_pending: SharedBool,
    /// The vcore to alert (and the round-robin cursor).
    pub ev_vcore: AtomicU32,
    /// User handler function for this queue (opaque to the kernel).
    pub ev_handler: AtomicUsize,
    /// User data for the handler (opaque to the kernel).
    pub ev_udata: AtomicUsize,
}

impl EventQueue {
    /// The flags, unknown bits retained.
    #[inline]
    pub fn flags(&self) -> EvqFlags {
        EvqFlags::from_raw(self.ev_flags.load(Ordering::Relaxed))
    }

    /// Sets the flags.
    #[inline]
    pub fn set_flags(&self, flags: EvqFlags) {
        self.ev_flags.store(flags.to_raw(), Ordering::Relaxed);
    }
}

/// The "big" event queue (`struct event_queue_big`): an [`EventQueue`]
/// followed by the mailbox its `ev_mbox` normally points at.
#[repr(C)]
#[derive(Debug, Default)]
pub struct EventQueueBig {
    /// The queue proper; a pointer to the big queue is a pointer to this.
    pub evq: EventQueue,
    /// The embedded mailbox.
    pub ev_imbox: EventMbox,
}
