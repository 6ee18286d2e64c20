//! The send side, path by path, on the mock process.

#![cfg(not(loom))]

mod common;

use std::sync::atomic::Ordering;

use common::{MockProc, VCORES, pc, vc};
use event_core::recv::setup::MboxKind;
use event_core::vcores::{ProcControl, ProcState, VcoreLists};
use event_core::{
    BadAddr, DropKind, Dropped, SpamPath, VcoreId, post_vcore_event, send_event, send_kernel_event,
    send_posix_signal,
};
use vcpd_abi::{
    CeqEvent, CeqOp, EV_EVENT, EV_POSIX_SIGNAL, EventMsg, EventQueue, EventQueueBig, EvqFlags,
    MboxType, UserAddr, VcpdFlags, sync::AtomicI32,
};

const V0: VcoreId = VcoreId::ZERO;

fn msg(n: u32) -> EventMsg {
    EventMsg::new(9).with_arg2(n)
}

fn big_mbox(p: &MockProc, q: UserAddr<EventQueue>) -> &vcpd_abi::EventMbox {
    &q.cast::<EventQueueBig>().check(&p.arena).unwrap().ev_imbox
}

fn drain_big(p: &MockProc, q: UserAddr<EventQueue>) -> Vec<EventMsg> {
    let handlers = event_core::recv::HandlerTable::new();
    let rx = p.receiver(&handlers);
    std::iter::from_fn(|| rx.extract_one(big_mbox(p, q))).collect()
}

#[test]
fn ucq_queue_with_ipi_posts_and_interrupts_mapped_vcore() {
    let p = MockProc::new();
    let q = p.big_evq(MboxKind::Ucq, EvqFlags::IPI, 2);
    send_event(&p, q, &msg(1), V0).unwrap();
    assert_eq!(drain_big(&p, q), vec![msg(1)]);
    assert_eq!(*p.ipis.lock().unwrap(), vec![2]);
    assert!(p.notif_pending(2), "notify sets notif_pending");
    assert_eq!(p.stats().posted(MboxType::Ucq), 1);
    // Unmapped vcore: no notify at all (try_notify peeks the mapping).
    let _ = p.set().preempt(&p.pd().vcpd, vc(2)).unwrap();
    send_event(&p, q, &msg(2), V0).unwrap();
    assert_eq!(p.ipis.lock().unwrap().len(), 1);
    // notif_disabled: notif_pending is set but no interrupt.
    let _ = p.set().restart(&p.pd().vcpd, vc(2), pc(vc(2))).unwrap();
    p.pd().vcpd[2].notif_disabled.store(true, Ordering::Relaxed);
    send_event(&p, q, &msg(3), V0).unwrap();
    assert_eq!(p.ipis.lock().unwrap().len(), 1);
    assert_eq!(p.stats().notifies(), 2);
}

#[test]
fn no_ipi_flag_means_no_notification() {
    let p = MockProc::new();
    let q = p.big_evq(MboxKind::Bitmap, EvqFlags::empty(), 1);
    send_event(&p, q, &msg(1), V0).unwrap();
    assert!(p.ipis.lock().unwrap().is_empty());
    assert!(!p.notif_pending(1));
    assert_eq!(
        drain_big(&p, q)
            .iter()
            .map(|m| m.ev_type)
            .collect::<Vec<_>>(),
        vec![9]
    );
    assert_eq!(p.stats().posted(MboxType::Bitmap), 1);
}

#[test]
fn ceq_queue_coalesces() {
    let p = MockProc::new();
    let events = p.arena.alloc_slice::<CeqEvent>(16).unwrap();
    let ring = p.arena.alloc_slice::<AtomicI32>(4).unwrap();
    let q = p.big_evq(
        MboxKind::Ceq {
            op: CeqOp::Add,
            events,
            ring,
        },
        EvqFlags::empty(),
        0,
    );
    for i in 1..=3 {
        send_event(&p, q, &msg(i), V0).unwrap();
    }
    let got = drain_big(&p, q);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].ev_type, got[0].ev_arg2), (9, 6));
    assert_eq!(p.stats().posted(MboxType::Ceq), 3);
}

#[test]
fn null_mailbox_means_the_vcpd_mailbox_public_or_private() {
    let p = MockProc::new();
    send_event(&p, p.vcpd_evq(EvqFlags::empty(), 3), &msg(1), V0).unwrap();
    send_event(&p, p.vcpd_evq(EvqFlags::VCORE_PRIVATE, 3), &msg(2), V0).unwrap();
    assert_eq!(p.take_public(3), vec![msg(1)]);
    assert_eq!(p.take_private(3), vec![msg(2)]);
}

#[test]
fn vcore_choice_appro_and_roundrobin() {
    let p = MockProc::new();
    // ev_vcore by default, the kernel's suggestion with APPRO.
    send_event(&p, p.vcpd_evq(EvqFlags::empty(), 1), &msg(1), vc(3)).unwrap();
    assert_eq!(p.take_public(1).len(), 1);
    send_event(&p, p.vcpd_evq(EvqFlags::VCORE_APPRO, 1), &msg(1), vc(3)).unwrap();
    assert_eq!(p.take_public(3).len(), 1);
    // Round-robin walks and stores ev_vcore, overriding APPRO.
    let q = p.vcpd_evq(EvqFlags::ROUNDROBIN | EvqFlags::VCORE_APPRO, 2);
    let mut order = vec![];
    for _ in 0..5 {
        send_event(&p, q, &msg(0), V0).unwrap();
        order.push(p.evq(q).ev_vcore.load(Ordering::Relaxed));
    }
    assert_eq!(order, vec![3, 0, 1, 2, 3]);
    // Round-robin ranges over the vcores granted now (Akaros's
    // num_vcores): with vcore 3 yielded, over 0..3.
    p.yield_now(3);
    for _ in 0..2 {
        send_event(&p, q, &msg(0), V0).unwrap();
        order.push(p.evq(q).ev_vcore.load(Ordering::Relaxed));
    }
    assert_eq!(order[5..], [1, 2]);
    // SCPs always use vcore 0.
    let scp = MockProc::scp();
    let q = scp.vcpd_evq(EvqFlags::ROUNDROBIN, 2);
    send_event(&scp, q, &msg(0), V0).unwrap();
    assert_eq!(scp.evq(q).ev_vcore.load(Ordering::Relaxed), 0);
    assert_eq!(scp.take_public(0).len(), 1);
}

/// Akaros's meaning of the vcore count: 0 while WAITING. A round-robin
/// spam with WAKEUP then chooses vcore 0, still reaches the inactive head
/// through the locked fallback, and wakes the process.
#[test]
fn roundrobin_to_a_waiting_process_with_zero_vcores_still_delivers_and_wakes() {
    let p = MockProc::new();
    for v in 0..VCORES as u32 {
        p.set_can_rcv(v, false);
    }
    p.arrange(&[], &[], &[2, 3, 1, 0]);
    assert_eq!(p.set().state(), ProcState::Waiting);
    assert_eq!(p.set().num_vcores(), 0);
    let q = p.vcpd_evq(
        EvqFlags::ROUNDROBIN | EvqFlags::SPAM_PUBLIC | EvqFlags::WAKEUP,
        3,
    );
    send_event(&p, q, &msg(5), V0).unwrap();
    assert_eq!(p.evq(q).ev_vcore.load(Ordering::Relaxed), 0);
    assert_eq!(p.take_public(2), vec![msg(5)], "the inactive head");
    assert_eq!(p.runnable.load(Ordering::Relaxed), 1, "woken");
    assert_eq!(p.set().state(), ProcState::Running);
    assert_eq!(p.stats().total_drops(), 0);
}

/// A drop before the mailbox (here: an unsafe vcore id) must not skip the
/// WAKEUP step.
#[test]
fn a_dropped_message_still_wakes_a_waiting_process() {
    let p = MockProc::new();
    p.arrange(&[], &[], &[0, 1, 2, 3]);
    let q = p.vcpd_evq(EvqFlags::WAKEUP, 40);
    assert_eq!(
        send_event(&p, q, &msg(1), V0),
        Err(Dropped::UnsafeVcore(40))
    );
    assert_eq!(p.runnable.load(Ordering::Relaxed), 1);
    assert_eq!(p.set().state(), ProcState::Running);
}

/// A send made while this CPU holds the process lock (which would spin
/// forever in the locked fallback) fails, and is counted.
#[test]
fn a_send_under_the_process_lock_fails_instead_of_deadlocking() {
    let p = MockProc::new();
    for v in 0..VCORES as u32 {
        p.set_can_rcv(v, false);
    }
    p.arrange(&[], &[], &[0, 1, 2, 3]);
    let q = p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 1);
    let r = p
        .set()
        .with_lock(|| send_event(&p, q, &msg(1), V0))
        .unwrap();
    assert!(matches!(r, Err(Dropped::LockHeld(_))), "{r:?}");
    assert_eq!(p.stats().drops(DropKind::LockHeld), 1);
    // Another CPU may wait for the lock: that is contention, not an error.
    std::thread::scope(|s| {
        let (p, q) = (&p, q);
        p.set()
            .with_lock(|| {
                s.spawn(move || send_event(p, q, &msg(2), V0).unwrap());
                std::thread::sleep(std::time::Duration::from_millis(20));
            })
            .unwrap();
    });
    assert_eq!(p.take_public(0), vec![msg(2)]);
}

#[test]
fn bad_input_is_dropped_and_counted() {
    let p = MockProc::new();
    let end = p.arena.user_range().end;
    for (bad, why) in [
        (0, BadAddr::Null),
        (end - 8, BadAddr::NotUserMemory),
        (3, BadAddr::Misaligned { align: 8 }),
    ] {
        assert_eq!(
            send_event(&p, UserAddr::new(bad), &msg(0), V0),
            Err(Dropped::BadEventQueue { addr: bad, why })
        );
    }
    let q = p.vcpd_evq(EvqFlags::empty(), VCORES as u32);
    assert_eq!(
        send_event(&p, q, &msg(0), V0),
        Err(Dropped::UnsafeVcore(VCORES as u32))
    );
    let evq = p.evq(q);
    evq.ev_vcore.store(0, Ordering::Relaxed);
    evq.ev_mbox.store(end + 4096, Ordering::Relaxed);
    assert_eq!(
        send_event(&p, q, &msg(0), V0),
        Err(Dropped::BadMailbox {
            addr: end + 4096,
            why: BadAddr::NotUserMemory
        })
    );
    // A mailbox with an unknown tag.
    let big = p.big_evq(MboxKind::Bitmap, EvqFlags::IPI, 0);
    big_mbox(&p, big).mbox_type.store(77, Ordering::Relaxed);
    assert_eq!(
        send_event(&p, big, &msg(0), V0),
        Err(Dropped::UnknownMailboxType(77))
    );
    assert!(
        p.ipis.lock().unwrap().is_empty(),
        "no alert for a dropped message"
    );
    // An uninitialised UCQ (tag set, queue not ready).
    big_mbox(&p, big).mbox_type.store(1, Ordering::Relaxed);
    assert_eq!(
        send_event(&p, big, &msg(0), V0),
        Err(Dropped::Ucq(ucq::SendError::NotReady))
    );
    // Every flag bit set at once still behaves.
    evq.ev_mbox.store(0, Ordering::Relaxed);
    evq.ev_flags.store(-1, Ordering::Relaxed);
    let _ = send_event(&p, q, &msg(0), V0);
    assert_eq!(p.stats().total_drops(), 7);
    assert_eq!(p.stats().drops(DropKind::BadEventQueue), 3);
    assert!(p.arena.guards_intact());
}

/// The mistakes a newcomer makes get answers that name them.
#[test]
fn set_up_mistakes_are_named() {
    let p = MockProc::new();
    // A queue that was never set up (all zeroes), with its address.
    let zeroed = p.arena.alloc_zeroed::<EventQueue>().unwrap();
    let zq = UserAddr::new((zeroed as *const EventQueue).addr());
    let err = send_event(&p, zq, &msg(1), V0).unwrap_err();
    assert_eq!(err, Dropped::EventQueueNotSetUp(zq.get()));
    assert!(err.to_string().contains("not set up"), "{err}");
    // A big queue whose mailbox was never set up (type 0), by address.
    let big = p.arena.alloc_zeroed::<EventQueueBig>().unwrap();
    let mbox = (&big.ev_imbox as *const vcpd_abi::EventMbox).addr();
    big.evq.ev_mbox.store(mbox, Ordering::Relaxed);
    big.evq.set_flags(EvqFlags::IPI);
    let bq = UserAddr::new((big as *const EventQueueBig).addr());
    let err = send_event(&p, bq, &msg(1), V0).unwrap_err();
    assert_eq!(
        err,
        Dropped::MailboxNotSetUp {
            addr: mbox,
            vcore: None
        }
    );
    assert!(
        err.to_string()
            .contains(&format!("{mbox:#x} is not set up"))
    );
    // ev_mbox pointing at the queue instead of its embedded mailbox.
    big.evq.ev_mbox.store(bq.get(), Ordering::Relaxed);
    let err = send_event(&p, bq, &msg(1), V0).unwrap_err();
    assert_eq!(err, Dropped::MailboxIsTheQueue(bq.get()));
    assert!(err.to_string().contains("points at the event queue itself"));
    // A VCPD mailbox the process never set up, by vcore.
    p.pd().vcpd[2]
        .ev_mbox_public
        .mbox_type
        .store(0, Ordering::Relaxed);
    let err = send_event(&p, p.vcpd_evq(EvqFlags::IPI, 2), &msg(1), V0).unwrap_err();
    assert_eq!(
        err,
        Dropped::MailboxNotSetUp {
            addr: 0,
            vcore: Some(2)
        }
    );
    assert!(
        err.to_string()
            .contains("VCPD mailbox of vcore 2 is not set up")
    );
    assert_eq!(p.stats().drops(DropKind::NotSetUp), 3);
    // The set-up helper refuses to make a queue that looks unset.
    let q = p.arena.alloc_zeroed::<EventQueue>().unwrap();
    assert_eq!(
        event_core::recv::setup::init_evq(q, UserAddr::NULL, EvqFlags::empty(), V0),
        Err(event_core::recv::setup::SetupError::QueueLooksUnset)
    );
}

#[test]
fn dying_process_gets_nothing() {
    let p = MockProc::new();
    let q = p.vcpd_evq(EvqFlags::IPI, 0);
    let stops = p.set().destroy().unwrap();
    assert_eq!(stops.len(), VCORES, "every mapped vcore must be stopped");
    assert_eq!(send_event(&p, q, &msg(0), V0), Err(Dropped::Dying));
    assert_eq!(
        post_vcore_event(&p, &msg(0), V0, EvqFlags::empty()),
        Err(Dropped::Dying)
    );
    assert!(p.take_public(0).is_empty());
    assert_eq!(p.stats().sends(), 0);
    assert_eq!(p.stats().drops(DropKind::Dying), 2);
}

#[test]
fn indir_is_throttled_until_acknowledged() {
    let p = MockProc::new();
    let q = p.big_evq(MboxKind::Ucq, EvqFlags::INDIR | EvqFlags::IPI, 1);
    for i in 0..5 {
        send_event(&p, q, &msg(i), V0).unwrap();
    }
    let indirs = p.take_public(1);
    assert_eq!(indirs.len(), 1, "one outstanding INDIR per queue");
    assert_eq!((indirs[0].ev_type, indirs[0].ev_arg3), (EV_EVENT, q.get()));
    assert_eq!(p.stats().indirs_sent(), 1);
    assert_eq!(p.stats().indirs_throttled(), 4);
    assert_eq!(
        drain_big(&p, q).len(),
        5,
        "all payloads in the queue's own mailbox"
    );
    // The consumer acknowledges; the next send alerts again.
    p.evq(q).ev_alert_pending.store(false, Ordering::Relaxed);
    send_event(&p, q, &msg(9), V0).unwrap();
    assert_eq!(p.take_public(1).len(), 1);
    // NOTHROTTLE sends one every time.
    let q2 = p.big_evq(MboxKind::Ucq, EvqFlags::INDIR | EvqFlags::NOTHROTTLE, 2);
    for i in 0..3 {
        send_event(&p, q2, &msg(i), V0).unwrap();
    }
    assert_eq!(p.take_public(2).len(), 3);
}

#[test]
fn spam_public_prefers_a_receptive_chosen_vcore() {
    let p = MockProc::new();
    let q = p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 2);
    send_event(&p, q, &msg(1), V0).unwrap();
    assert_eq!(p.take_public(2), vec![msg(1)]);
    assert!(p.notif_pending(2));
    assert_eq!(p.stats().spam(SpamPath::ChosenVcore), 1);
}

#[test]
fn spam_public_falls_to_the_online_list_then_bulk_then_inactive_head() {
    let p = MockProc::new();
    let q = p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 2);
    p.set_can_rcv(2, false);
    p.arrange(&[1, 0], &[3], &[2]);
    send_event(&p, q, &msg(1), V0).unwrap();
    assert_eq!(p.take_public(1), vec![msg(1)], "online head");
    assert_eq!(p.stats().spam(SpamPath::OnlineList), 1);
    p.arrange(&[], &[3, 0], &[2, 1]);
    send_event(&p, q, &msg(2), V0).unwrap();
    assert_eq!(p.take_public(3), vec![msg(2)], "bulk-preempted head");
    assert_eq!(p.stats().spam(SpamPath::BulkPreemptedList), 1);
    // Nothing online or preempted; the inactive head was marked receivable.
    p.arrange(&[], &[], &[0, 1, 2, 3]);
    // Runnable (woken) but no vcore granted yet.
    assert!(p.set().wakeup().unwrap());
    p.set_can_rcv(0, true);
    send_event(&p, q, &msg(3), V0).unwrap();
    assert_eq!(p.take_public(0), vec![msg(3)]);
    assert_eq!(p.stats().spam(SpamPath::InactiveHead), 1);
}

#[test]
fn waiting_process_goes_to_the_locked_fallback_and_wakes() {
    let p = MockProc::new();
    for v in 0..VCORES as u32 {
        p.set_can_rcv(v, false);
    }
    p.arrange(&[], &[], &[3, 1, 0, 2]);
    assert_eq!(p.set().state(), ProcState::Waiting);
    let q = p.vcpd_evq(EvqFlags::SPAM_PUBLIC | EvqFlags::WAKEUP, 0);
    send_event(&p, q, &msg(7), V0).unwrap();
    assert_eq!(
        p.take_public(3),
        vec![msg(7)],
        "the inactive head: the vcore a wakeup starts"
    );
    assert!(
        p.pd().vcpd[3]
            .flags(Ordering::Relaxed)
            .contains(VcpdFlags::CAN_RCV_MSG),
        "marked for later senders"
    );
    assert!(p.notif_pending(3));
    assert_eq!(p.stats().spam(SpamPath::LockedFallback), 1);
    assert_eq!(p.runnable.load(Ordering::Relaxed), 1);
    assert_eq!(p.stats().wakeups(), 1);
    // Without WAKEUP no wakeup.
    p.arrange(&[], &[], &[3, 1, 0, 2]);
    let q2 = p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 0);
    send_event(&p, q2, &msg(8), V0).unwrap();
    assert_eq!(p.runnable.load(Ordering::Relaxed), 1);
    assert_eq!(p.set().state(), ProcState::Waiting);
}

#[test]
fn must_run_goes_to_a_mapped_vcore_only() {
    let p = MockProc::new();
    let q = p.vcpd_evq(EvqFlags::SPAM_PUBLIC | EvqFlags::VCORE_MUST_RUN, 2);
    send_event(&p, q, &msg(1), V0).unwrap();
    assert_eq!(p.take_public(2), vec![msg(1)]);
    // Chosen vcore not mapped (even though CAN_RCV_MSG): the online head.
    p.arrange(&[0], &[], &[2, 1, 3]);
    send_event(&p, q, &msg(2), V0).unwrap();
    assert!(p.take_public(2).is_empty());
    assert_eq!(p.take_public(0), vec![msg(2)]);
    assert_eq!(p.stats().spam(SpamPath::OnlineList), 1);
}

#[test]
fn scp_spams_vcore_zero() {
    let p = MockProc::scp();
    let q = p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 3);
    send_event(&p, q, &msg(1), V0).unwrap();
    assert_eq!(p.take_public(0), vec![msg(1)]);
    assert_eq!(p.stats().spam(SpamPath::Scp), 1);
}

#[test]
fn spam_indir_reaches_someone_when_the_chosen_vcore_yielded() {
    let p = MockProc::new();
    let q = p.big_evq(MboxKind::Ucq, EvqFlags::INDIR | EvqFlags::SPAM_INDIR, 1);
    p.set_can_rcv(1, false);
    p.arrange(&[2], &[], &[1, 0, 3]);
    send_event(&p, q, &msg(1), V0).unwrap();
    let indir = p.take_public(2);
    assert_eq!(indir.len(), 1);
    assert_eq!(indir[0].ev_type, EV_EVENT);
}

#[test]
fn kernel_events_follow_kernel_evts() {
    let p = MockProc::new();
    assert_eq!(
        send_posix_signal(&p, 11),
        Ok(()),
        "no queue registered: nothing happens"
    );
    assert_eq!(p.stats().sends(), 0);
    let q = p.vcpd_evq(EvqFlags::empty(), 2);
    p.pd().kernel_evts[usize::from(EV_POSIX_SIGNAL)].store(q.get(), Ordering::Release);
    send_posix_signal(&p, 11).unwrap();
    let got = p.take_public(2);
    assert_eq!((got[0].ev_type, got[0].ev_arg1), (EV_POSIX_SIGNAL, 11));
    assert_eq!(
        send_kernel_event(&p, &EventMsg::new(50), V0),
        Err(Dropped::BadKernelEventType(50))
    );
    // A garbage queue pointer in kernel_evts costs that event only.
    p.pd().kernel_evts[3].store(12345, Ordering::Relaxed);
    assert!(send_kernel_event(&p, &EventMsg::new(3), V0).is_err());
}

#[test]
fn post_vcore_event_ignores_the_process_wishes() {
    let p = MockProc::new();
    post_vcore_event(&p, &msg(1), vc(1), EvqFlags::empty()).unwrap();
    post_vcore_event(&p, &msg(2), vc(1), EvqFlags::VCORE_PRIVATE | EvqFlags::IPI).unwrap();
    assert_eq!(p.take_public(1), vec![msg(1)]);
    assert_eq!(p.take_private(1), vec![msg(2)]);
    assert!(p.notif_pending(1));
    assert_eq!(*p.ipis.lock().unwrap(), vec![1]);
    assert_eq!(
        post_vcore_event(&p, &msg(3), vc(9), EvqFlags::empty()),
        Err(Dropped::UnsafeVcore(9))
    );
}

#[test]
fn spam_list_member_gives_up_on_a_garbage_list_and_falls_back() {
    let p = MockProc::new();
    for v in 0..VCORES as u32 {
        p.set_can_rcv(v, false);
    }
    p.events.vcores().hide_heads.store(true, Ordering::Relaxed);
    let q = p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 0);
    assert_eq!(
        send_event(&p, q, &msg(1), V0),
        Err(Dropped::NoVcoreToSpam),
        "host broke the list invariant"
    );
    assert_eq!(p.stats().drops(DropKind::NoVcoreToSpam), 1);
}
