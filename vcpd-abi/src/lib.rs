//! The shared-memory ABI of kernel-to-user event delivery.
//!
//! Every structure that the kernel and a process both read and write:
//! event messages, the three mailbox types (UCQ, CEQ, event bitmap), event
//! queues, the per-vcore VCPD and procdata's event part. Types only; the
//! algorithms live in the `ucq`, `ceq`, `evbitmap` and `event-core` crates.
//!
//! # Layout rules
//!
//! - Every shared type is `#[repr(C)]` with the x86_64 layout of the
//!   original C system (Akaros). Sizes and field offsets are pinned by
//!   compile-time assertions at the bottom of this file, so a change that
//!   would break the ABI does not compile.
//! - The process may write any bytes into shared memory at any moment. So
//!   every field is an atomic ([`sync`]), a C `bool` is a [`SharedBool`]
//!   (an atomic byte: a Rust `bool` holding 2 would be undefined behaviour),
//!   and the few plain-data blobs (saved register contexts) are [`Racy`]
//!   cells copied in and out with volatile accesses. No code ever holds a
//!   plain `&`/`&mut` to data another party writes.
//! - Addresses stored in shared memory are plain `usize` *user* addresses.
//!   The kernel turns one into a reference only through
//!   [`UserMemoryExt::user_ref`], which checks it with the host's
//!   [`UserMemory`] first. The process side follows them unchecked only
//!   behind an `unsafe` constructor that promises they are *the process's
//!   own memory*, defined once in [`umem`](umem#the-processs-own-memory).
//! - All-zero bytes are a valid, "not set up" value of every type. (A
//!   zeroed `u_lock` reads as held by vcore 0: set-up code initialises it.)
//! - Under `cfg(loom)` the atomics are loom's; the same code is then model
//!   checked, and the layout assertions (which only hold for `core`'s
//!   atomics) are compiled out.
//!
//! Flag words keep unknown bits ([`EvqFlags::from_raw`]) but the code only
//! ever tests the bits it knows, so an unknown bit is inert.

#![cfg_attr(not(any(feature = "testing", test)), no_std)]

pub mod ceq;
pub mod evbitmap;
pub mod evq;
pub mod flags;
pub mod mbox;
pub mod msg;
pub mod procdata;
pub mod sync;
pub mod uaddr;
pub mod ucq;
pub mod ulock;
pub mod umem;
pub mod vcpd;

#[cfg(all(any(feature = "testing", test), not(loom)))]
pub mod arena;
#[cfg(any(feature = "testing", test))]
pub mod deadline;

pub use ceq::{CEQ_ADD, CEQ_EMPTY_SLOT, CEQ_OR, Ceq, CeqEvent, CeqOp, UnknownCeqOp};
pub use evbitmap::{EVBITMAP_BYTES, EvBitmap};
pub use evq::{EventQueue, EventQueueBig};
pub use flags::{EvqFlags, VcpdFlags, VcpdRacyFlags};
pub use mbox::{
    EV_MBOX_BITMAP, EV_MBOX_CEQ, EV_MBOX_UCQ, EventMbox, MboxRef, MboxType, UnknownMboxType,
};
pub use msg::*;
pub use procdata::{MAX_NUM_VCORES, ProcData, ProcDataN};
pub use sync::{Pod, Racy, SharedBool};
pub use uaddr::UserAddr;
pub use ucq::{
    MsgContainer, NR_MSG_PER_PAGE, PAGE_SIZE, Slot, Ucq, UcqPage, UcqPageHeader, slot_is_good,
};
pub use ulock::{ULOCK_UNLOCKED, UserLock};
pub use umem::{SharedMem, UserMemory, UserMemoryExt};
pub use vcpd::{
    AncillaryState, HwTrapframe, SwTrapframe, Trapframe, UserContext, Vcpd, VmTrapframe, XsaveArea,
};

/// Compile-time layout checks: sizes and offsets of the x86_64 C ABI.
#[cfg(not(loom))]
mod layout {
    use core::mem::{align_of, offset_of, size_of};

    use static_assertions::const_assert_eq;

    use super::*;
    use crate::sync::AtomicUsize;
    use crate::vcpd::Trapframe;

    const_assert_eq!(size_of::<EventMsg>(), 24);
    const_assert_eq!(offset_of!(EventMsg, ev_arg1), 2);
    const_assert_eq!(offset_of!(EventMsg, ev_arg2), 4);
    const_assert_eq!(offset_of!(EventMsg, ev_arg3), 8);
    const_assert_eq!(offset_of!(EventMsg, ev_arg4), 16);
    const_assert_eq!(size_of::<SharedEventMsg>(), 24);
    const_assert_eq!(offset_of!(SharedEventMsg, ev_arg3), 8);
    const_assert_eq!(offset_of!(SharedEventMsg, ev_arg4), 16);

    const_assert_eq!(size_of::<Ucq>(), 48);
    const_assert_eq!(offset_of!(Ucq, prod_idx), 0);
    const_assert_eq!(offset_of!(Ucq, spare_pg), 8);
    const_assert_eq!(offset_of!(Ucq, nr_extra_pgs), 16);
    const_assert_eq!(offset_of!(Ucq, cons_idx), 24);
    const_assert_eq!(offset_of!(Ucq, prod_overflow), 32);
    const_assert_eq!(offset_of!(Ucq, ucq_ready), 33);
    const_assert_eq!(offset_of!(Ucq, u_lock), 36);
    const_assert_eq!(size_of::<UcqPageHeader>(), 16);
    const_assert_eq!(size_of::<MsgContainer>(), 32);
    const_assert_eq!(offset_of!(MsgContainer, ready), 24);
    const_assert_eq!(size_of::<UcqPage>(), PAGE_SIZE);
    const_assert_eq!(offset_of!(UcqPage, msgs), 16);
    // NR_MSG_PER_PAGE is the C formula: (PGSIZE - roundup(hdr, align)) / size.
    const_assert_eq!(
        NR_MSG_PER_PAGE,
        (PAGE_SIZE - size_of::<UcqPageHeader>().next_multiple_of(align_of::<MsgContainer>()))
            / size_of::<MsgContainer>()
    );

    const_assert_eq!(size_of::<CeqEvent>(), 32);
    const_assert_eq!(offset_of!(CeqEvent, blob_data), 8);
    const_assert_eq!(offset_of!(CeqEvent, idx_posted), 16);
    const_assert_eq!(offset_of!(CeqEvent, user_data), 24);
    const_assert_eq!(size_of::<Ceq>(), 72);
    const_assert_eq!(offset_of!(Ceq, events), 0);
    const_assert_eq!(offset_of!(Ceq, nr_events), 8);
    const_assert_eq!(offset_of!(Ceq, last_recovered), 12);
    const_assert_eq!(offset_of!(Ceq, max_event_ever), 16);
    const_assert_eq!(offset_of!(Ceq, ring), 24);
    const_assert_eq!(offset_of!(Ceq, ring_sz), 32);
    const_assert_eq!(offset_of!(Ceq, operation), 36);
    const_assert_eq!(offset_of!(Ceq, ring_overflowed), 37);
    const_assert_eq!(offset_of!(Ceq, overflow_recovery), 38);
    const_assert_eq!(offset_of!(Ceq, prod_idx), 40);
    const_assert_eq!(offset_of!(Ceq, cons_pub_idx), 48);
    const_assert_eq!(offset_of!(Ceq, cons_pvt_idx), 56);
    const_assert_eq!(offset_of!(Ceq, u_lock), 64);

    const_assert_eq!(EVBITMAP_BYTES, 7);
    const_assert_eq!(size_of::<EvBitmap>(), 8);
    const_assert_eq!(offset_of!(EvBitmap, bitmap), 1);

    const_assert_eq!(size_of::<EventMbox>(), 80);
    const_assert_eq!(offset_of!(EventMbox, mbox_type), 0);

    const_assert_eq!(size_of::<EventQueue>(), 40);
    const_assert_eq!(offset_of!(EventQueue, ev_mbox), 0);
    const_assert_eq!(offset_of!(EventQueue, ev_flags), 8);
    const_assert_eq!(offset_of!(EventQueue, ev_alert_pending), 12);
    const_assert_eq!(offset_of!(EventQueue, ev_vcore), 16);
    const_assert_eq!(offset_of!(EventQueue, ev_handler), 24);
    const_assert_eq!(offset_of!(EventQueue, ev_udata), 32);
    const_assert_eq!(size_of::<EventQueueBig>(), 120);
    const_assert_eq!(offset_of!(EventQueueBig, ev_imbox), 40);

    const_assert_eq!(size_of::<HwTrapframe>(), 192);
    const_assert_eq!(offset_of!(HwTrapframe, trapno), 136);
    const_assert_eq!(offset_of!(HwTrapframe, rip), 152);
    const_assert_eq!(offset_of!(HwTrapframe, rflags), 168);
    const_assert_eq!(offset_of!(HwTrapframe, ss), 184);
    const_assert_eq!(size_of::<SwTrapframe>(), 88);
    const_assert_eq!(offset_of!(SwTrapframe, mxcsr), 80);
    const_assert_eq!(size_of::<VmTrapframe>(), 208);
    const_assert_eq!(offset_of!(VmTrapframe, guest_pcoreid), 160);
    const_assert_eq!(offset_of!(VmTrapframe, guest_va), 192);
    const_assert_eq!(size_of::<Trapframe>(), 208);
    const_assert_eq!(size_of::<UserContext>(), 216);
    const_assert_eq!(offset_of!(UserContext, tf), 8);
    const_assert_eq!(align_of::<AncillaryState>(), 64);
    const_assert_eq!(size_of::<AncillaryState>(), 2688);
    const_assert_eq!(size_of::<XsaveArea>(), 2688);
    const_assert_eq!(offset_of!(XsaveArea, xstate_bv), 512);
    const_assert_eq!(offset_of!(XsaveArea, reserv6), 528);
    const_assert_eq!(offset_of!(XsaveArea, extended_region), 544);

    // gcc's `struct preempt_data` (vcpd-abi/tests/gcc_layout/).
    const_assert_eq!(offset_of!(Vcpd, vcore_ctx), 0);
    const_assert_eq!(offset_of!(Vcpd, preempt_anc), 256);
    const_assert_eq!(offset_of!(Vcpd, uthread_ctx), 2944);
    const_assert_eq!(offset_of!(Vcpd, vcore_entry), 3160);
    const_assert_eq!(offset_of!(Vcpd, vcore_stack), 3168);
    const_assert_eq!(offset_of!(Vcpd, vcore_tls_desc), 3176);
    const_assert_eq!(offset_of!(Vcpd, flags), 3184);
    const_assert_eq!(offset_of!(Vcpd, rflags), 3192);
    const_assert_eq!(offset_of!(Vcpd, notif_disabled), 3196);
    const_assert_eq!(offset_of!(Vcpd, notif_pending), 3197);
    const_assert_eq!(offset_of!(Vcpd, ev_mbox_public), 3200);
    const_assert_eq!(offset_of!(Vcpd, ev_mbox_private), 3280);
    const_assert_eq!(size_of::<Vcpd>(), 3392);
    const_assert_eq!(align_of::<Vcpd>(), 64);

    const_assert_eq!(MAX_NR_EVENT, 50);
    const_assert_eq!(offset_of!(ProcData, kernel_evts), 0);
    const_assert_eq!(offset_of!(ProcData, vcpd), 448);
    const_assert_eq!(size_of::<ProcData>(), 448 + MAX_NUM_VCORES * 3392);
    const_assert_eq!(size_of::<AtomicUsize>(), 8);
}
