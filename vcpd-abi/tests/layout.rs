//! Runtime layout and encoding tests of the ABI.
//!
//! The compile-time assertions in `lib.rs` pin sizes and offsets; these
//! tests additionally write bytes exactly where the C layout puts a field
//! and read them back through the Rust types, check every flag value and
//! enum decoding, and round-trip the UCQ slot encoding.

use core::mem::{align_of, offset_of, size_of};
use core::sync::atomic::Ordering;

use proptest::prelude::*;
use vcpd_abi::*;

/// A zeroed, 64-byte aligned buffer big enough for any ABI struct but procdata.
#[repr(C, align(4096))]
struct Buf([u8; 8192]);

fn with_bytes<T: SharedMem, R>(fill: &[(usize, &[u8])], f: impl FnOnce(&T) -> R) -> R {
    assert!(size_of::<T>() <= 8192);
    let mut buf = Box::new(Buf([0; 8192]));
    for (off, bytes) in fill {
        buf.0[*off..*off + bytes.len()].copy_from_slice(bytes);
    }
    // SAFETY: the buffer is aligned to 4096 (>= align_of::<T>()), large
    // enough, and `T: SharedMem` accepts any bytes.
    let t = unsafe { &*buf.0.as_mut_ptr().cast::<T>() };
    f(t)
}

#[test]
fn sizes_match_the_c_abi() {
    assert_eq!(size_of::<EventMsg>(), 24);
    assert_eq!(size_of::<Ucq>(), 48);
    assert_eq!(size_of::<MsgContainer>(), 32);
    assert_eq!(size_of::<UcqPage>(), 4096);
    assert_eq!(size_of::<Ceq>(), 72);
    assert_eq!(size_of::<CeqEvent>(), 32);
    assert_eq!(size_of::<EvBitmap>(), 8);
    assert_eq!(size_of::<EventMbox>(), 80);
    assert_eq!(size_of::<EventQueue>(), 40);
    assert_eq!(size_of::<EventQueueBig>(), 120);
    assert_eq!(size_of::<HwTrapframe>(), 192);
    assert_eq!(size_of::<SwTrapframe>(), 88);
    assert_eq!(size_of::<VmTrapframe>(), 208);
    assert_eq!(size_of::<UserContext>(), 216);
    assert_eq!(size_of::<AncillaryState>(), 2752);
    assert_eq!(align_of::<AncillaryState>(), 64);
    assert_eq!(size_of::<Vcpd>(), 3456);
    assert_eq!(size_of::<ProcData>(), 448 + MAX_NUM_VCORES * 3456);
    assert_eq!(NR_MSG_PER_PAGE, 127);
}

#[test]
fn event_msg_fields_sit_at_c_offsets() {
    let msg = EventMsg::new(EV_POSIX_SIGNAL)
        .with_arg1(0x1122)
        .with_arg2(0x3344_5566)
        .with_arg3(0x7788_99aa_bbcc_ddee)
        .with_arg4(0x0102_0304_0506_0708);
    // SAFETY: EventMsg is repr(C) plain data of 24 initialised bytes (no padding).
    let bytes: [u8; 24] = unsafe { core::mem::transmute(msg) };
    assert_eq!(&bytes[0..2], &EV_POSIX_SIGNAL.to_le_bytes());
    assert_eq!(&bytes[2..4], &0x1122u16.to_le_bytes());
    assert_eq!(&bytes[4..8], &0x3344_5566u32.to_le_bytes());
    assert_eq!(&bytes[8..16], &0x7788_99aa_bbcc_ddeeu64.to_le_bytes());
    assert_eq!(&bytes[16..24], &0x0102_0304_0506_0708u64.to_le_bytes());
}

#[test]
fn ucq_fields_read_from_c_offsets() {
    with_bytes::<Ucq, _>(
        &[
            (0, &0x1000_0005usize.to_le_bytes()),
            (8, &0x2000usize.to_le_bytes()),
            (16, &7usize.to_le_bytes()),
            (24, &0x1000_0003usize.to_le_bytes()),
            (32, &[1]),
            (33, &[2]),
        ],
        |u| {
            assert_eq!(u.prod_idx.load(Ordering::Relaxed), 0x1000_0005);
            assert_eq!(u.spare_pg.load(Ordering::Relaxed), 0x2000);
            assert_eq!(u.nr_extra_pgs.load(Ordering::Relaxed), 7);
            assert_eq!(u.cons_idx.load(Ordering::Relaxed), 0x1000_0003);
            assert!(u.prod_overflow.load(Ordering::Relaxed));
            assert!(
                u.ucq_ready.load(Ordering::Relaxed),
                "any non-zero byte is true"
            );
        },
    );
}

#[test]
fn ceq_fields_read_from_c_offsets() {
    with_bytes::<Ceq, _>(
        &[
            (0, &0xabc0usize.to_le_bytes()),
            (8, &100u32.to_le_bytes()),
            (12, &9u32.to_le_bytes()),
            (16, &42usize.to_le_bytes()),
            (24, &0xdef0usize.to_le_bytes()),
            (32, &64u32.to_le_bytes()),
            (36, &[CEQ_ADD]),
            (37, &[1]),
            (38, &[1]),
            (40, &5usize.to_le_bytes()),
            (48, &3usize.to_le_bytes()),
            (56, &4usize.to_le_bytes()),
        ],
        |c| {
            assert_eq!(c.events.load(Ordering::Relaxed), 0xabc0);
            assert_eq!(c.nr_events.load(Ordering::Relaxed), 100);
            assert_eq!(c.last_recovered.load(Ordering::Relaxed), 9);
            assert_eq!(c.max_event_ever.load(Ordering::Relaxed), 42);
            assert_eq!(c.ring.load(Ordering::Relaxed), 0xdef0);
            assert_eq!(c.ring_sz.load(Ordering::Relaxed), 64);
            assert_eq!(
                CeqOp::try_from(c.operation.load(Ordering::Relaxed)),
                Ok(CeqOp::Add)
            );
            assert!(c.ring_overflowed.load(Ordering::Relaxed));
            assert!(c.overflow_recovery.load(Ordering::Relaxed));
            assert_eq!(c.prod_idx.load(Ordering::Relaxed), 5);
            assert_eq!(c.cons_pub_idx.load(Ordering::Relaxed), 3);
            assert_eq!(c.cons_pvt_idx.load(Ordering::Relaxed), 4);
        },
    );
}

#[test]
fn mailbox_union_overlays_bodies_at_offset_8() {
    // A bitmap mailbox with check_bits set and bits 3 and 49 set.
    let mut bits = [0u8; 8];
    bits[0] = 1;
    bits[1] = 1 << 3;
    bits[1 + 49 / 8] |= 1 << (49 % 8);
    with_bytes::<EventMbox, _>(&[(0, &EV_MBOX_BITMAP.to_le_bytes()), (8, &bits)], |m| {
        let MboxRef::Bitmap(b) = m.body().unwrap() else {
            panic!("tag says bitmap")
        };
        assert!(b.check_bits.load(Ordering::Relaxed));
        assert_eq!(b.bitmap[0].load(Ordering::Relaxed), 1 << 3);
        assert_eq!(b.bitmap[6].load(Ordering::Relaxed), 1 << 1);
        // The same bytes seen as a UCQ: its prod_idx is the first word.
        assert_eq!(
            m.as_ucq().prod_idx.load(Ordering::Relaxed),
            u64::from_le_bytes(bits) as usize
        );
    });
    with_bytes::<EventMbox, _>(&[(0, &7i32.to_le_bytes())], |m| {
        assert_eq!(m.body().unwrap_err(), UnknownMboxType(7));
    });
    with_bytes::<EventMbox, _>(&[(0, &0i32.to_le_bytes())], |m| {
        assert_eq!(
            m.kind(),
            Err(UnknownMboxType(0)),
            "a zeroed mailbox is not set up"
        );
    });
}

#[test]
fn event_queue_fields_read_from_c_offsets() {
    with_bytes::<EventQueueBig, _>(
        &[
            (0, &0x5000usize.to_le_bytes()),
            (8, &0x215i32.to_le_bytes()),
            (12, &[1]),
            (16, &3u32.to_le_bytes()),
            (24, &0x6000usize.to_le_bytes()),
            (32, &0x7000usize.to_le_bytes()),
            (40, &EV_MBOX_CEQ.to_le_bytes()),
        ],
        |big| {
            let q = &big.evq;
            assert_eq!(q.ev_mbox.load(Ordering::Relaxed), 0x5000);
            assert_eq!(
                q.flags(),
                EvqFlags::IPI | EvqFlags::INDIR | EvqFlags::SPAM_INDIR | EvqFlags::WAKEUP
            );
            assert!(q.ev_alert_pending.load(Ordering::Relaxed));
            assert_eq!(q.ev_vcore.load(Ordering::Relaxed), 3);
            assert_eq!(q.ev_handler.load(Ordering::Relaxed), 0x6000);
            assert_eq!(q.ev_udata.load(Ordering::Relaxed), 0x7000);
            assert_eq!(big.ev_imbox.kind(), Ok(MboxType::Ceq));
        },
    );
}

#[test]
fn vcpd_fields_read_from_c_offsets() {
    with_bytes::<Vcpd, _>(
        &[
            (0, &ROS_HW_CTX_BYTES),
            (8 + 152, &0xfeedusize.to_le_bytes()),
            (3224, &0x1111usize.to_le_bytes()),
            (3248, &0x5usize.to_le_bytes()),
            (3256, &0x1000i32.to_le_bytes()),
            (3260, &[1]),
            (3261, &[1]),
            (3264, &EV_MBOX_UCQ.to_le_bytes()),
            (3344, &EV_MBOX_BITMAP.to_le_bytes()),
        ],
        |v| {
            assert_eq!(
                v.vcore_ctx.ctx_type.load(Ordering::Relaxed),
                vcpd_abi::vcpd::ROS_HW_CTX
            );
            // SAFETY: reading a union field of plain integers.
            assert_eq!(unsafe { v.vcore_ctx.tf.read().hw.rip }, 0xfeed);
            assert_eq!(v.vcore_entry.load(Ordering::Relaxed), 0x1111);
            assert_eq!(
                v.flags(Ordering::Relaxed),
                VcpdFlags::K_LOCK | VcpdFlags::CAN_RCV_MSG
            );
            assert_eq!(v.racy_flags(), VcpdRacyFlags::FPU_SAVED);
            assert!(v.notif_disabled.load(Ordering::Relaxed));
            assert!(v.notif_pending.load(Ordering::Relaxed));
            assert_eq!(v.mbox(false).kind(), Ok(MboxType::Ucq));
            assert_eq!(v.mbox(true).kind(), Ok(MboxType::Bitmap));
        },
    );
}

const ROS_HW_CTX_BYTES: [u8; 4] = 1i32.to_le_bytes();

#[test]
fn procdata_offsets() {
    assert_eq!(procdata::kernel_evt_offset(0), 0);
    assert_eq!(procdata::kernel_evt_offset(12), 96);
    assert_eq!(procdata::vcpd_offset(0), 448);
    assert_eq!(procdata::vcpd_offset(3), 448 + 3 * 3456);
    assert_eq!(offset_of!(ProcDataN<2>, vcpd), offset_of!(ProcData, vcpd));
}

#[test]
fn flag_values_are_the_abi_values() {
    let evq = [
        (EvqFlags::IPI, 0x001),
        (EvqFlags::SPAM_PUBLIC, 0x002),
        (EvqFlags::INDIR, 0x004),
        (EvqFlags::VCORE_PRIVATE, 0x008),
        (EvqFlags::SPAM_INDIR, 0x010),
        (EvqFlags::VCORE_MUST_RUN, 0x020),
        (EvqFlags::NOTHROTTLE, 0x040),
        (EvqFlags::ROUNDROBIN, 0x080),
        (EvqFlags::VCORE_APPRO, 0x100),
        (EvqFlags::WAKEUP, 0x200),
    ];
    for (f, v) in evq {
        assert_eq!(f.bits(), v, "{f:?}");
    }
    let vc = [
        (VcpdFlags::K_LOCK, 0x001),
        (VcpdFlags::PREEMPTED, 0x002),
        (VcpdFlags::CAN_RCV_MSG, 0x004),
        (VcpdFlags::UTHREAD_STEALING, 0x008),
        (VcpdFlags::SCP_NOVCCTX, 0x010),
    ];
    for (f, v) in vc {
        assert_eq!(f.bits(), v, "{f:?}");
    }
    assert_eq!(VcpdRacyFlags::FPU_SAVED.bits(), 0x1000);
}

#[test]
fn unknown_flag_bits_are_kept_but_inert() {
    let f = EvqFlags::from_raw(0x7fff_fc01u32 as i32);
    assert!(f.contains(EvqFlags::IPI));
    assert!(!f.contains(EvqFlags::SPAM_PUBLIC));
    assert_eq!(
        f.to_raw(),
        0x7fff_fc01u32 as i32,
        "unknown bits survive a round trip"
    );
    assert_eq!(EvqFlags::from_raw(-1).to_raw(), -1);
}

#[test]
fn event_types_decode_and_reject() {
    for t in 0..=12u16 {
        let e = EventType::try_from(t).unwrap();
        assert_eq!(u16::from(e), t);
    }
    assert_eq!(EventType::try_from(EV_EVENT), Ok(EventType::Event));
    assert_eq!(EventType::try_from(13), Err(UnknownEventType(13)));
    assert_eq!(
        EventType::try_from(u16::MAX),
        Err(UnknownEventType(u16::MAX))
    );
    assert_eq!(NR_EVENT_TYPES, 25);
    assert_eq!(MAX_NR_DYN_EVENT, 25);
    assert_eq!(MAX_NR_EVENT, 50);
}

#[test]
fn mailbox_and_ceq_tags_decode_and_reject() {
    assert_eq!(MboxType::try_from(1), Ok(MboxType::Ucq));
    assert_eq!(MboxType::try_from(2), Ok(MboxType::Bitmap));
    assert_eq!(MboxType::try_from(3), Ok(MboxType::Ceq));
    for bad in [0, 4, -1, i32::MAX] {
        assert_eq!(MboxType::try_from(bad), Err(UnknownMboxType(bad)));
    }
    assert_eq!(CeqOp::try_from(1), Ok(CeqOp::Or));
    assert_eq!(CeqOp::try_from(2), Ok(CeqOp::Add));
    for bad in [0u8, 3, 255] {
        assert_eq!(CeqOp::try_from(bad), Err(UnknownCeqOp(bad)));
    }
}

#[test]
fn slot_edges() {
    assert!(!slot_is_good(0), "null page");
    assert!(!slot_is_good(5), "null page with a slot");
    assert!(slot_is_good(0x1000));
    assert!(slot_is_good(0x1000 + 126));
    assert!(!slot_is_good(0x1000 + 127), "one past the last container");
    assert_eq!(Slot(0x1000 + 3).container_addr(), 0x1000 + 16 + 3 * 32);
    assert_eq!(
        Slot(0x1000 + 126).container_addr() + 32,
        0x1000 + 16 + 127 * 32
    );
    assert!(
        Slot(0x1000 + 126).container_addr() + 32 <= 0x2000,
        "last container inside the page"
    );
    // Garbage slots compute garbage addresses without panicking.
    let _ = Slot(usize::MAX).container_addr();
}

proptest! {
    #[test]
    fn slot_encoding_round_trips(page in 1usize..(1 << 40), index in 0usize..PAGE_SIZE) {
        let page = page * PAGE_SIZE;
        let s = Slot::new(page, index);
        prop_assert_eq!(s.page(), page);
        prop_assert_eq!(s.index(), index);
        prop_assert_eq!(s.is_good(), index < NR_MSG_PER_PAGE);
        prop_assert_eq!(Slot(s.0 + 1).page(), if index + 1 == PAGE_SIZE { page + PAGE_SIZE } else { page });
    }

    #[test]
    fn shared_bool_reads_any_nonzero_byte_as_true(b in any::<u8>()) {
        let f = SharedBool::new(false);
        f.as_raw().store(b, Ordering::Relaxed);
        prop_assert_eq!(f.load(Ordering::Relaxed), b != 0);
    }

    #[test]
    fn evq_flags_round_trip_any_word(raw in any::<i32>()) {
        prop_assert_eq!(EvqFlags::from_raw(raw).to_raw(), raw);
    }
}
