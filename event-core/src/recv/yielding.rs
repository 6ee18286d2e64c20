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
    pub fn vcore_online(&self, vcoreid: VcoreId) -> usize {
        self.vcpd(vcoreid)
            .set_flags(VcpdFlags::CAN_RCV_MSG, Ordering::SeqCst);
        self.handle_events(vcoreid)
    }
}
