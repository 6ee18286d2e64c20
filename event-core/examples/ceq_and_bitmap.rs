//! The host of `hello_host`, delivering into a CEQ (coalescing: values of
//! one event type add up) and an event bitmap (one bit per type, no
//! payload), each alerting vcore 1 with an indirection (which lands in its
//! UCQ VCPD mailbox: indirections carry the queue's address, so they need
//! a mailbox that carries arguments).
//!
//! `cargo run -p event-core --example ceq_and_bitmap`

#[path = "hello_host.rs"]
mod hello_host;

use std::sync::atomic::Ordering;

use event_core::abi::sync::AtomicI32;
use event_core::abi::{CeqEvent, CeqOp, EventMsg, EventQueueBig, EvqFlags, UserAddr};
use event_core::recv::setup::{self, MboxKind};
use event_core::{VcoreId, send_event};
use hello_host::Process;

fn main() {
    let p = Process::new();
    // The process's CEQ arrays and queues live in its memory.
    let arrays = p.mem.page().unwrap();
    let events = p.user_slice::<CeqEvent>(arrays, 64);
    let ring = p.user_slice::<AtomicI32>(arrays + 64 * size_of::<CeqEvent>(), 8);
    let vcore1 = VcoreId::new(1).unwrap();
    let flags = EvqFlags::INDIR | EvqFlags::IPI;
    let ceq_q = p.mem.page().unwrap();
    let ceq = MboxKind::Ceq {
        op: CeqOp::Add,
        events,
        ring,
    };
    setup::init_big_evq(
        p.user_ref_of::<EventQueueBig>(ceq_q),
        ceq,
        flags,
        vcore1,
        &*p,
    )
    .unwrap();
    let bm_q = p.mem.page().unwrap();
    setup::init_big_evq(
        p.user_ref_of::<EventQueueBig>(bm_q),
        MboxKind::Bitmap,
        flags,
        vcore1,
        &*p,
    )
    .unwrap();
    let cores = p.start();
    // Ten values of 5 into event 20 of the CEQ: one entry, total 50.
    for _ in 0..10 {
        let msg = EventMsg::new(20).with_arg2(5);
        send_event(&*p, UserAddr::new(ceq_q), &msg, VcoreId::ZERO).unwrap();
    }
    p.wait_for(0, 1);
    // Three sends of type 21 into the bitmap: one bit.
    for _ in 0..3 {
        send_event(&*p, UserAddr::new(bm_q), &EventMsg::new(21), VcoreId::ZERO).unwrap();
    }
    p.wait_for(1, 1);
    cores.stop();
    let total = p.ceq_total.load(Ordering::Relaxed);
    println!(
        "CEQ: {} message(s) for event 20 carrying a total of {total}",
        p.delivered[0].load(Ordering::Relaxed)
    );
    let ok = p.report(&["CEQ (ADD)", "bitmap"]) && total == 50;
    std::process::exit(if ok { 0 } else { 1 });
}
