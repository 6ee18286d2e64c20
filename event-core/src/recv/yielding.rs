//! Yielding a vcore without losing messages, and coming back online.
//!
//! The process's half of the protocol in [`crate::vcores`]: a vcore that
//! wants to give up its core first stops advertising `CAN_RCV_MSG`, then
//! drains its mailboxes once more (clearing `notif_pending` with a swap);
//! only then does it ask the kernel to yield, and the kernel refuses while
//! `notif_pending` is set. A sender posts, sets `notif_pending` (a swap),
//! and re-checks `CAN_RCV_MSG`: the two swaps are ordered one way or the
//! other, so a message is either drained here, or stops the yield, or goes
//! to another vcore.

use vcpd_abi::VcpdFlags;
use vcpd_abi::sync::Ordering;

use super::{Receiver, VcoreRuntime};
use crate::ids::VcoreId;

impl<R: VcoreRuntime> Receiver<'_, R> {
    /// First half of a yield. Returns the messages handled; then call the
    /// kernel's yield. If the kernel refuses (a message arrived), call
    /// [`vcore_online`](Self::vcore_online) and carry on.
    ///
    /// ```
    /// use event_core::testing::ToyHost;
    /// use event_core::{ProcOps, VcoreId};
    ///
    /// let host = ToyHost::new();
    /// let v = VcoreId::new(2).unwrap();
    /// let rx = host.receiver();
    /// rx.prepare_to_yield(v);
    /// let vcores = host.events().vcores();
    /// match vcores.yield_vcore(&host.procdata_ref().vcpd, v) {
    ///     Ok(left) => assert!(!left.waiting), // the core is free
    ///     Err(_) => { rx.vcore_online(v); } // a message arrived: carry on
    /// }
    /// ```
    pub fn prepare_to_yield(&self, vcoreid: VcoreId) -> usize {
        // The clear is ordered before the drain's release swap of
        // `notif_pending`: a sender whose set comes after that swap
        // synchronizes with it and sees the flag cleared (it then looks
        // elsewhere); a set that comes before is seen by the drain.
        self.vcpd(vcoreid)
            .clear_flags(VcpdFlags::CAN_RCV_MSG, Ordering::SeqCst);
        self.handle_events(vcoreid)
    }

    /// A vcore that starts running (first start, restart after preemption,
    /// or a refused yield): advertise `CAN_RCV_MSG`, then handle events.
    /// Returns the messages handled.
    ///
    /// ```
    /// use core::sync::atomic::Ordering;
    /// use event_core::abi::VcpdFlags;
    /// use event_core::testing::ToyHost;
    /// use event_core::VcoreId;
    ///
    /// let host = ToyHost::new();
    /// let rx = host.receiver();
    /// rx.vcore_online(VcoreId::ZERO);
    /// let flags = rx.vcpd(VcoreId::ZERO).flags(Ordering::Relaxed);
    /// assert!(flags.contains(VcpdFlags::CAN_RCV_MSG));
    /// ```
    pub fn vcore_online(&self, vcoreid: VcoreId) -> usize {
        self.vcpd(vcoreid)
            .set_flags(VcpdFlags::CAN_RCV_MSG, Ordering::SeqCst);
        self.handle_events(vcoreid)
    }
}
