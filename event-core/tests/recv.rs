//! The receive side on the mock process: handler table, dispatch,
//! indirections, queue handlers, preemption recovery, yielding, set-up.

#![cfg(not(loom))]

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{MockProc, vc};
use event_core::recv::setup::{self, MboxKind, SetupError};
use event_core::recv::{HANDLERS_PER_TYPE, HandlerTable, Receiver, RegisterError};
use event_core::{VcoreId, send_event};
use vcpd_abi::{EV_EVENT, EventMsg, EventQueue, EventQueueBig, EvqFlags, VcpdFlags};

static SEEN: Mutex<Vec<(VcoreId, u16, u32, usize)>> = Mutex::new(Vec::new());

fn record(_: &Receiver<'_, MockProc>, vcoreid: VcoreId, msg: &EventMsg, data: usize) {
    SEEN.lock()
        .unwrap()
        .push((vcoreid, msg.ev_type, msg.ev_arg2, data));
}

fn other(_: &Receiver<'_, MockProc>, _: VcoreId, _: &EventMsg, _: usize) {}

/// Tests share `SEEN`; each takes this lock for its whole run.
static SERIAL: Mutex<()> = Mutex::new(());

fn seen() -> Vec<(VcoreId, u16, u32, usize)> {
    std::mem::take(&mut *SEEN.lock().unwrap())
}

#[test]
fn several_handlers_per_type_run_in_order() {
    let _s = SERIAL.lock().unwrap();
    seen();
    let p = MockProc::new();
    let t = HandlerTable::new();
    let first = t.register(9, record, 1).unwrap();
    t.register(9, record, 2).unwrap();
    t.register(10, record, 3).unwrap();
    let rx = p.receiver(&t);
    rx.dispatch(vc(5), &EventMsg::new(9).with_arg2(7));
    assert_eq!(seen(), vec![(vc(5), 9, 7, 1), (vc(5), 9, 7, 2)]);
    assert!(t.deregister(first));
    assert!(!t.deregister(first), "already gone");
    rx.dispatch(vc(5), &EventMsg::new(9));
    assert_eq!(seen(), vec![(vc(5), 9, 0, 2)]);
    rx.dispatch(vc(5), &EventMsg::new(11));
    assert!(seen().is_empty(), "no handler, nothing happens");
}

#[test]
fn handler_table_limits() {
    let t = HandlerTable::<MockProc>::new();
    assert_eq!(t.register(50, other, 0), Err(RegisterError::BadType(50)));
    // The same function with the same data twice would run twice. (One
    // pointer value: each mention of a function may yield a different
    // address, as Miri shows.)
    let f: event_core::recv::HandlerFn<MockProc> = record;
    t.register(4, f, 7).unwrap();
    assert_eq!(t.register(4, f, 7), Err(RegisterError::Duplicate(4)));
    t.register(4, f, 8).unwrap();
    for i in 0..HANDLERS_PER_TYPE {
        t.register(3, other, i).unwrap();
    }
    assert_eq!(t.register(3, other, 99), Err(RegisterError::Full(3)));
    assert_eq!(
        t.handlers(EV_EVENT).len(),
        1,
        "the indirection handler is built in"
    );
    assert!(t.handlers(60).is_empty());
}

#[test]
fn handle_events_clears_notif_pending_and_drains_private_then_public() {
    let _s = SERIAL.lock().unwrap();
    seen();
    let p = MockProc::new();
    let t = HandlerTable::new();
    t.register(9, record, 0).unwrap();
    let rx = p.receiver(&t);
    event_core::post_vcore_event(&p, &EventMsg::new(9).with_arg2(1), vc(2), EvqFlags::empty())
        .unwrap();
    event_core::post_vcore_event(
        &p,
        &EventMsg::new(9).with_arg2(2),
        vc(2),
        EvqFlags::VCORE_PRIVATE,
    )
    .unwrap();
    assert!(p.notif_pending(2));
    assert_eq!(rx.handle_events(vc(2)), 2);
    assert!(!p.notif_pending(2));
    assert_eq!(
        seen(),
        vec![(vc(2), 9, 2, 0), (vc(2), 9, 1, 0)],
        "private first"
    );
    assert_eq!(rx.handle_events(vc(2)), 0);
}

#[test]
fn indirection_clears_alert_pending_then_drains_the_queue() {
    let _s = SERIAL.lock().unwrap();
    seen();
    let p = MockProc::new();
    let t = HandlerTable::new();
    t.register(9, record, 0).unwrap();
    let rx = p.receiver(&t);
    let q = p.big_evq(MboxKind::Ucq, EvqFlags::INDIR | EvqFlags::IPI, 1);
    for i in 0..3 {
        send_event(&p, q, &EventMsg::new(9).with_arg2(i), VcoreId::ZERO).unwrap();
    }
    let evq = p.evq(q);
    assert!(evq.ev_alert_pending.load(Ordering::Relaxed));
    // The INDIR is in vcore 1's public mailbox; handling it drains the queue.
    assert_eq!(rx.handle_events(vc(1)), 1);
    assert!(
        !evq.ev_alert_pending.load(Ordering::Relaxed),
        "acknowledged"
    );
    assert_eq!(
        seen().iter().map(|s| s.2).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    // A new send alerts again (guarantee 5).
    send_event(&p, q, &EventMsg::new(9).with_arg2(3), VcoreId::ZERO).unwrap();
    assert_eq!(rx.handle_events(vc(1)), 1);
    assert_eq!(seen().len(), 1);
}

static QUEUE_HANDLER_CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn queue_handler(ev_q: &EventQueue) {
    QUEUE_HANDLER_CALLS.fetch_add(1, Ordering::SeqCst);
    assert!(
        !ev_q.ev_alert_pending.load(Ordering::Relaxed),
        "cleared before the handler runs"
    );
}

#[test]
fn a_queue_handler_replaces_draining() {
    let p = MockProc::new();
    let t = HandlerTable::new();
    let rx = p.receiver(&t);
    let q = p.big_evq(MboxKind::Bitmap, EvqFlags::INDIR, 0);
    setup::set_evq_handler(p.evq(q), Some(queue_handler));
    send_event(&p, q, &EventMsg::new(4), VcoreId::ZERO).unwrap();
    rx.handle_events(vc(0));
    assert_eq!(QUEUE_HANDLER_CALLS.load(Ordering::SeqCst), 1);
    assert!(
        !rx.mbox_is_empty(&q.cast::<EventQueueBig>().check(&p.arena).unwrap().ev_imbox),
        "left to the handler"
    );
}

#[test]
fn a_preempted_vcores_public_mailbox_can_be_recovered() {
    let _s = SERIAL.lock().unwrap();
    seen();
    let p = MockProc::new();
    let t = HandlerTable::new();
    t.register(9, record, 0).unwrap();
    let rx = p.receiver(&t);
    p.arrange(&[0], &[3], &[1, 2]);
    p.set_can_rcv(3, false);
    let q = p.vcpd_evq(EvqFlags::SPAM_PUBLIC, 3);
    send_event(&p, q, &EventMsg::new(9).with_arg2(5), VcoreId::ZERO).unwrap();
    // Spam went to the online head (vcore 0), not 3; put one in 3's too.
    event_core::post_vcore_event(&p, &EventMsg::new(9).with_arg2(6), vc(3), EvqFlags::empty())
        .unwrap();
    assert_eq!(rx.recover_public_mbox(vc(0), vc(3)), 1);
    assert_eq!(
        seen(),
        vec![(vc(0), 9, 6, 0)],
        "vcore 0 handled vcore 3's message"
    );
}

#[test]
fn yield_protocol_clears_and_restores_can_rcv_msg() {
    let p = MockProc::new();
    let t = HandlerTable::new();
    let rx = p.receiver(&t);
    event_core::post_vcore_event(&p, &EventMsg::new(9), vc(1), EvqFlags::empty()).unwrap();
    assert_eq!(rx.prepare_to_yield(vc(1)), 1, "drained on the way out");
    assert!(
        !p.pd().vcpd[1]
            .flags(Ordering::Relaxed)
            .contains(VcpdFlags::CAN_RCV_MSG)
    );
    assert!(!p.notif_pending(1), "nothing to stop the yield");
    assert_eq!(rx.vcore_online(vc(1)), 0);
    assert!(
        p.pd().vcpd[1]
            .flags(Ordering::Relaxed)
            .contains(VcpdFlags::CAN_RCV_MSG)
    );
}

#[test]
fn kevents_enable_and_disable() {
    let p = MockProc::new();
    let t = HandlerTable::new();
    let rx = p.receiver(&t);
    let q = p.vcpd_evq(EvqFlags::empty(), 0);
    rx.enable_kevent(12, q).unwrap();
    assert_eq!(rx.kernel_evt(12), q);
    assert_eq!(rx.disable_kevent(12), Ok(q));
    assert!(rx.kernel_evt(12).is_null());
    assert_eq!(rx.enable_kevent(50, q), Err(SetupError::BadEventType(50)));
}

#[test]
fn setup_refuses_bad_arrays_and_publishes_the_tag_last() {
    let p = MockProc::new();
    let big = p.arena.alloc_zeroed::<EventQueueBig>().unwrap();
    let events = p.arena.alloc_slice::<vcpd_abi::CeqEvent>(4).unwrap();
    let ring = p.arena.alloc_slice::<vcpd_abi::sync::AtomicI32>(3).unwrap();
    let kind = MboxKind::Ceq {
        op: vcpd_abi::CeqOp::Or,
        events,
        ring,
    };
    assert_eq!(
        setup::init_big_evq(big, kind, EvqFlags::empty(), VcoreId::ZERO, &p),
        Err(SetupError::Ceq(ceq::InitError::BadRingSize(3)))
    );
    assert!(big.ev_imbox.kind().is_err(), "no tag on a failed set-up");
}
