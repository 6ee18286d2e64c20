//! Runtime layout and encoding tests of the ABI.
//!
//! `every_offset_matches_gcc` checks every size and field offset against
//! the table gcc produced from Akaros's C definitions (`gcc_layout/`). The
//! compile-time assertions in `lib.rs` pin the same numbers; these tests
//! additionally write bytes exactly where the C layout puts a field
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

#[path = "gcc_layout/offsets.rs"]
mod gcc;

/// Every size, alignment and field offset of every shared Rust type, keyed
/// by the C struct and field names gcc's table uses.
fn rust_layout() -> Vec<(&'static str, &'static str, usize)> {
    let mut rows = Vec::new();
    macro_rules! layout {
        ($c:literal: $t:ty { $($cf:literal => $rf:ident),* $(,)? }) => {
            rows.push(($c, "#size", size_of::<$t>()));
            rows.push(($c, "#align", align_of::<$t>()));
            $(rows.push(($c, $cf, offset_of!($t, $rf)));)*
        };
    }
    layout!("hw_trapframe": HwTrapframe {
        "tf_gsbase" => gsbase, "tf_fsbase" => fsbase, "tf_rax" => rax, "tf_rbx" => rbx,
        "tf_rcx" => rcx, "tf_rdx" => rdx, "tf_rbp" => rbp, "tf_rsi" => rsi, "tf_rdi" => rdi,
        "tf_r8" => r8, "tf_r9" => r9, "tf_r10" => r10, "tf_r11" => r11, "tf_r12" => r12,
        "tf_r13" => r13, "tf_r14" => r14, "tf_r15" => r15, "tf_trapno" => trapno,
        "tf_padding5" => padding5, "tf_err" => err, "tf_padding4" => padding4, "tf_rip" => rip,
        "tf_cs" => cs, "tf_padding3" => padding3, "tf_padding2" => padding2,
        "tf_rflags" => rflags, "tf_rsp" => rsp, "tf_ss" => ss, "tf_padding1" => padding1,
        "tf_padding0" => padding0,
    });
    layout!("sw_trapframe": SwTrapframe {
        "tf_gsbase" => gsbase, "tf_fsbase" => fsbase, "tf_rbx" => rbx, "tf_rbp" => rbp,
        "tf_r12" => r12, "tf_r13" => r13, "tf_r14" => r14, "tf_r15" => r15, "tf_rip" => rip,
        "tf_rsp" => rsp, "tf_mxcsr" => mxcsr, "tf_fpucw" => fpucw, "tf_padding0" => padding0,
    });
    layout!("vm_trapframe": VmTrapframe {
        "tf_rax" => rax, "tf_rbx" => rbx, "tf_rcx" => rcx, "tf_rdx" => rdx, "tf_rbp" => rbp,
        "tf_rsi" => rsi, "tf_rdi" => rdi, "tf_r8" => r8, "tf_r9" => r9, "tf_r10" => r10,
        "tf_r11" => r11, "tf_r12" => r12, "tf_r13" => r13, "tf_r14" => r14, "tf_r15" => r15,
        "tf_rip" => rip, "tf_rflags" => rflags, "tf_rsp" => rsp, "tf_cr2" => cr2,
        "tf_cr3" => cr3, "tf_guest_pcoreid" => guest_pcoreid, "tf_flags" => flags,
        "tf_trap_inject" => trap_inject, "tf_guest_intr_status" => guest_intr_status,
        "tf_padding0" => padding0, "tf_exit_reason" => exit_reason,
        "tf_exit_qual" => exit_qual, "tf_intrinfo1" => intrinfo1, "tf_intrinfo2" => intrinfo2,
        "tf_guest_va" => guest_va, "tf_guest_pa" => guest_pa,
    });
    layout!("user_context": UserContext { "type" => ctx_type, "tf" => tf });
    // The XSAVE image is `AncillaryState`'s only field (checked below), so
    // its offsets are the C struct's.
    layout!("ancillary_state": XsaveArea {
        "fp_head" => fp_head, "st_mm" => st_mm, "xmm" => xmm, "fx_reserved" => fx_reserved,
        "xstate_bv" => xstate_bv, "xcomp_bv" => xcomp_bv, "reserv6" => reserv6,
        "extended_region" => extended_region,
    });
    layout!("event_msg": EventMsg {
        "ev_type" => ev_type, "ev_arg1" => ev_arg1, "ev_arg2" => ev_arg2,
        "ev_arg3" => ev_arg3, "ev_arg4" => ev_arg4,
    });
    layout!("ucq": Ucq {
        "prod_idx" => prod_idx, "spare_pg" => spare_pg, "nr_extra_pgs" => nr_extra_pgs,
        "cons_idx" => cons_idx, "prod_overflow" => prod_overflow, "ucq_ready" => ucq_ready,
        "u_lock" => u_lock,
    });
    layout!("ucq_page_header": UcqPageHeader {
        "cons_next_pg" => cons_next_pg, "nr_cons" => nr_cons,
    });
    layout!("msg_container": MsgContainer { "ev_msg" => ev_msg, "ready" => ready });
    // C's `ucq_page` ends in a flexible array (sizeof = the header's): the
    // table has its offsets and capacity, not a size.
    rows.push(("ucq_page", "header", offset_of!(UcqPage, header)));
    rows.push(("ucq_page", "msgs", offset_of!(UcqPage, msgs)));
    rows.push(("ucq_page", "#NR_MSG_PER_PAGE", NR_MSG_PER_PAGE));
    layout!("ceq_event": CeqEvent {
        "coalesce" => coalesce, "blob_data" => blob_data, "idx_posted" => idx_posted,
        "user_data" => user_data,
    });
    layout!("ceq": Ceq {
        "events" => events, "nr_events" => nr_events, "last_recovered" => last_recovered,
        "max_event_ever" => max_event_ever, "ring" => ring, "ring_sz" => ring_sz,
        "operation" => operation, "ring_overflowed" => ring_overflowed,
        "overflow_recovery" => overflow_recovery, "prod_idx" => prod_idx,
        "cons_pub_idx" => cons_pub_idx, "cons_pvt_idx" => cons_pvt_idx, "u_lock" => u_lock,
    });
    layout!("evbitmap": EvBitmap { "check_bits" => check_bits, "bitmap" => bitmap });
    // The mailbox body is a private union: measure its views.
    let m = EventMbox::new();
    let base = &m as *const EventMbox as usize;
    layout!("event_mbox": EventMbox { "type" => mbox_type });
    rows.push((
        "event_mbox",
        "ucq",
        m.as_ucq() as *const Ucq as usize - base,
    ));
    rows.push((
        "event_mbox",
        "evbm",
        m.as_evbitmap() as *const EvBitmap as usize - base,
    ));
    rows.push((
        "event_mbox",
        "ceq",
        m.as_ceq() as *const Ceq as usize - base,
    ));
    layout!("event_queue": EventQueue {
        "ev_mbox" => ev_mbox, "ev_flags" => ev_flags, "ev_alert_pending" => ev_alert_pending,
        "ev_vcore" => ev_vcore, "ev_handler" => ev_handler, "ev_udata" => ev_udata,
    });
    // C repeats the slim queue's fields in the big one; Rust embeds it.
    let q = offset_of!(EventQueueBig, evq);
    rows.push(("event_queue_big", "#size", size_of::<EventQueueBig>()));
    rows.push(("event_queue_big", "#align", align_of::<EventQueueBig>()));
    rows.push((
        "event_queue_big",
        "ev_mbox",
        q + offset_of!(EventQueue, ev_mbox),
    ));
    rows.push((
        "event_queue_big",
        "ev_flags",
        q + offset_of!(EventQueue, ev_flags),
    ));
    rows.push((
        "event_queue_big",
        "ev_alert_pending",
        q + offset_of!(EventQueue, ev_alert_pending),
    ));
    rows.push((
        "event_queue_big",
        "ev_vcore",
        q + offset_of!(EventQueue, ev_vcore),
    ));
    rows.push((
        "event_queue_big",
        "ev_handler",
        q + offset_of!(EventQueue, ev_handler),
    ));
    rows.push((
        "event_queue_big",
        "ev_udata",
        q + offset_of!(EventQueue, ev_udata),
    ));
    rows.push((
        "event_queue_big",
        "ev_imbox",
        offset_of!(EventQueueBig, ev_imbox),
    ));
    layout!("preempt_data": Vcpd {
        "vcore_ctx" => vcore_ctx, "preempt_anc" => preempt_anc, "uthread_ctx" => uthread_ctx,
        "vcore_entry" => vcore_entry, "vcore_stack" => vcore_stack,
        "vcore_tls_desc" => vcore_tls_desc, "flags" => flags, "rflags" => rflags,
        "notif_disabled" => notif_disabled, "notif_pending" => notif_pending,
        "ev_mbox_public" => ev_mbox_public, "ev_mbox_private" => ev_mbox_private,
    });
    layout!("procdata_events": ProcData {
        "kernel_evts" => kernel_evts, "vcore_preempt_data" => vcpd,
    });
    rows.push(("procdata_events", "#MAX_NR_EVENT", MAX_NR_EVENT));
    rows.push(("procdata_events", "#MAX_NUM_VCORES", MAX_NUM_VCORES));
    rows
}

/// Every row gcc printed has a Rust twin with the same value, and every
/// Rust row is in gcc's table: no field of either side goes unchecked.
#[test]
fn every_offset_matches_gcc() {
    let rust = rust_layout();
    let mut wrong = Vec::new();
    for &(ty, field, c) in gcc::GCC_LAYOUT {
        match rust.iter().find(|r| r.0 == ty && r.1 == field) {
            Some(&(_, _, r)) if r == c => {}
            Some(&(_, _, r)) => wrong.push(format!("{ty}.{field}: gcc {c}, Rust {r}")),
            None => wrong.push(format!("{ty}.{field}: gcc {c}, no Rust twin")),
        }
    }
    for &(ty, field, r) in &rust {
        if !gcc::GCC_LAYOUT.iter().any(|g| g.0 == ty && g.1 == field) {
            wrong.push(format!("{ty}.{field}: Rust {r}, not in gcc's table"));
        }
    }
    assert!(
        wrong.is_empty(),
        "layout differs from gcc's:\n{}",
        wrong.join("\n")
    );
    assert_eq!(rust.len(), gcc::GCC_LAYOUT.len(), "duplicate rows");
}

/// The numbers issue 10 found wrong, named once more so a regenerated
/// table cannot quietly move them.
#[test]
fn vcpd_matches_gccs_preempt_data() {
    assert_eq!(size_of::<AncillaryState>(), 2688);
    assert_eq!(size_of::<AncillaryState>(), size_of::<XsaveArea>());
    assert_eq!(align_of::<AncillaryState>(), 64);
    assert_eq!(offset_of!(XsaveArea, extended_region), 544);
    assert_eq!(offset_of!(Vcpd, uthread_ctx), 2944);
    assert_eq!(offset_of!(Vcpd, vcore_entry), 3160);
    assert_eq!(offset_of!(Vcpd, vcore_stack), 3168);
    assert_eq!(offset_of!(Vcpd, vcore_tls_desc), 3176);
    assert_eq!(offset_of!(Vcpd, flags), 3184);
    assert_eq!(offset_of!(Vcpd, rflags), 3192);
    assert_eq!(offset_of!(Vcpd, notif_disabled), 3196);
    assert_eq!(offset_of!(Vcpd, notif_pending), 3197);
    assert_eq!(offset_of!(Vcpd, ev_mbox_public), 3200);
    assert_eq!(offset_of!(Vcpd, ev_mbox_private), 3280);
    assert_eq!(size_of::<Vcpd>(), 3392);
    assert_eq!(size_of::<ProcData>(), 448 + MAX_NUM_VCORES * 3392);
    assert_eq!(size_of::<UcqPage>(), PAGE_SIZE);
    assert_eq!(size_of::<Trapframe>(), size_of::<VmTrapframe>());
}

#[test]
fn trapframe_variants_round_trip_and_zero_fill() {
    let hw = HwTrapframe {
        rip: 0xfeed,
        ss: 0x2b,
        ..Default::default()
    };
    let t = Trapframe::from_hw(hw);
    assert_eq!(t.hw(), hw);
    let sw = SwTrapframe {
        rsp: 7,
        fpucw: 0x37f,
        ..Default::default()
    };
    let t = Trapframe::from_sw(sw);
    assert_eq!(t.sw(), sw);
    // The bytes past the software frame are zero, not left over.
    assert_eq!(t.vm().guest_pa, 0);
    assert_eq!(t.vm().r10, 7, "sw.rsp (offset 72) shares bytes with vm.r10");
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
            (3160, &0x1111usize.to_le_bytes()),
            (3184, &0x5usize.to_le_bytes()),
            (3192, &0x1000i32.to_le_bytes()),
            (3196, &[1]),
            (3197, &[1]),
            (3200, &EV_MBOX_UCQ.to_le_bytes()),
            (3280, &EV_MBOX_BITMAP.to_le_bytes()),
        ],
        |v| {
            assert_eq!(
                v.vcore_ctx.ctx_type.load(Ordering::Relaxed),
                vcpd_abi::vcpd::ROS_HW_CTX
            );
            assert_eq!(v.vcore_ctx.tf.read().hw().rip, 0xfeed);
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
    assert_eq!(procdata::vcpd_offset(3), 448 + 3 * 3392);
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
