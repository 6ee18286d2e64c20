//! One test per producer/consumer path of the CEQ, single-threaded, on the
//! simulated process arena.

#![cfg(not(loom))]

use core::sync::atomic::Ordering;

use ceq::{CeqStats, Posted, SendError, Spin};
use vcpd_abi::arena::UserArena;
use vcpd_abi::sync::AtomicI32;
use vcpd_abi::{CEQ_EMPTY_SLOT, Ceq, CeqEvent, CeqOp, EventMsg, UserMemoryExt};

struct Setup<'a> {
    arena: &'a UserArena,
    cons: ceq::Consumer<'a>,
    ceq: &'a Ceq,
    events: &'a [CeqEvent],
    ring: &'a [AtomicI32],
    stats: CeqStats,
}

impl<'a> Setup<'a> {
    fn new(arena: &'a UserArena, op: CeqOp, nr_events: usize, ring_sz: usize) -> Self {
        let ceq = arena.alloc_zeroed::<Ceq>().unwrap();
        let events = arena.alloc_slice::<CeqEvent>(nr_events).unwrap();
        let ring = arena.alloc_slice::<AtomicI32>(ring_sz).unwrap();
        // SAFETY: the queue and its arrays live in the arena (the simulated
        // process's own memory), which outlives every use of the queue here.
        let cons = unsafe { ceq::init(ceq, op, events, ring) }.unwrap();
        Self {
            arena,
            cons,
            ceq,
            events,
            ring,
            stats: CeqStats::new(),
        }
    }

    fn send(&self, ev_type: u16, value: u32) -> Result<Posted, SendError> {
        ceq::send(
            self.ceq,
            &EventMsg::new(ev_type).with_arg2(value).with_arg3(0xb10b),
            self.arena,
            &self.stats,
        )
    }

    fn recv(&self) -> Option<EventMsg> {
        self.cons.try_recv(&Spin)
    }

    /// A consumer rebuilt from what the queue holds now (as a vcore that
    /// finds the queue in a mailbox makes one).
    fn attached(&self) -> ceq::Consumer<'a> {
        // SAFETY: the queue's addresses point into the arena; tests that
        // corrupt `ring_sz` only ever shrink what the handle covers or make
        // it refuse the ring.
        unsafe { ceq::Consumer::new(self.ceq) }
    }

    fn drain(&self) -> Vec<(u16, u64)> {
        std::iter::from_fn(|| self.recv())
            .map(|m| (m.ev_type, m.ev_arg4))
            .collect()
    }
}

fn arena() -> UserArena {
    UserArena::new(1 << 20)
}

#[test]
fn init_validates_its_arrays() {
    let a = arena();
    let ceq = a.alloc_zeroed::<Ceq>().unwrap();
    let events = a.alloc_slice::<CeqEvent>(4).unwrap();
    let ring3 = a.alloc_slice::<AtomicI32>(3).unwrap();
    // SAFETY: arena memory, alive for the whole test.
    let init = |e, r| unsafe { ceq::init(ceq, CeqOp::Or, e, r) }.err();
    assert_eq!(init(events, ring3), Some(ceq::InitError::BadRingSize(3)));
    assert_eq!(
        init(events, &ring3[..0]),
        Some(ceq::InitError::BadRingSize(0))
    );
    assert_eq!(
        init(&events[..0], &ring3[..2]),
        Some(ceq::InitError::NullArray)
    );
    assert_eq!(init(events, &ring3[..2]), None);
    assert!(
        ring3[..2]
            .iter()
            .all(|s| s.load(Ordering::Relaxed) == CEQ_EMPTY_SLOT)
    );
    assert!(ceq::is_empty(ceq));
}

#[test]
fn add_coalesces_and_posts_once() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Add, 8, 8);
    assert_eq!(s.send(3, 5), Ok(Posted::Ring));
    assert_eq!(s.send(3, 7), Ok(Posted::AlreadyPosted));
    assert_eq!(s.send(3, 1), Ok(Posted::AlreadyPosted));
    assert_eq!(
        s.ceq.prod_idx.load(Ordering::Relaxed),
        1,
        "one ring entry for three sends"
    );
    let m = s.recv().unwrap();
    assert_eq!(
        (m.ev_type, m.ev_arg2, m.ev_arg4, m.ev_arg3),
        (3, 13, 13, 0xb10b)
    );
    assert!(s.recv().is_none());
    assert!(ceq::is_empty(s.ceq));
    // After extraction the entry posts again.
    assert_eq!(s.send(3, 2), Ok(Posted::Ring));
    assert_eq!(s.drain(), vec![(3, 2)]);
    let st = s.stats.snapshot();
    assert_eq!((st.coalesced, st.ring_posts, st.already_posted), (4, 2, 2));
}

#[test]
fn or_coalesces_bits() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Or, 4, 4);
    for bit in [0, 3, 3, 9] {
        s.send(1, 1 << bit).unwrap();
    }
    assert_eq!(s.drain(), vec![(1, 1 | 1 << 3 | 1 << 9)]);
}

#[test]
fn full_value_survives_past_u32() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Add, 2, 2);
    for _ in 0..3 {
        s.send(0, u32::MAX).unwrap();
    }
    let m = s.recv().unwrap();
    assert_eq!(m.ev_arg4, 3 * u64::from(u32::MAX));
    assert_eq!(
        m.ev_arg2,
        (3 * u64::from(u32::MAX)) as u32,
        "ev_arg2 keeps the C ABI's truncation"
    );
}

#[test]
fn out_of_range_type_is_dropped() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Add, 4, 4);
    assert_eq!(
        s.send(4, 1),
        Err(SendError::OutOfRange {
            ev_type: 4,
            nr_events: 4
        })
    );
    assert_eq!(
        s.send(u16::MAX, 1),
        Err(SendError::OutOfRange {
            ev_type: u16::MAX,
            nr_events: 4
        })
    );
    assert_eq!(s.stats.snapshot().dropped_out_of_range, 2);
    assert_eq!(s.ceq.max_event_ever.load(Ordering::Relaxed), 0);
    assert!(ceq::is_empty(s.ceq));
}

#[test]
fn max_event_ever_rises_monotonically() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Or, 16, 16);
    for t in [2, 9, 5, 11, 0] {
        s.send(t, 1).unwrap();
    }
    assert_eq!(s.ceq.max_event_ever.load(Ordering::Relaxed), 11);
}

#[test]
fn unknown_operation_drops() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Add, 4, 4);
    s.ceq.operation.store(9, Ordering::Relaxed);
    assert_eq!(s.send(1, 1), Err(SendError::UnknownOp(9)));
    assert_eq!(
        s.events[1].coalesce.load(Ordering::Relaxed),
        0,
        "nothing written"
    );
    assert_eq!(s.stats.snapshot().dropped_bad_op, 1);
}

#[test]
fn ring_overflow_is_recovered_by_a_resumable_scan() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Add, 32, 2);
    // Two indices fit the ring; the others overflow but stay flagged.
    let sent: Vec<u16> = vec![5, 1, 20, 7, 30];
    let mut posted = vec![];
    for &t in &sent {
        posted.push(s.send(t, u32::from(t) + 100).unwrap());
    }
    assert_eq!(
        posted,
        vec![
            Posted::Ring,
            Posted::Ring,
            Posted::Overflowed,
            Posted::Overflowed,
            Posted::Overflowed
        ]
    );
    assert!(s.ceq.ring_overflowed.load(Ordering::Relaxed));
    assert!(!ceq::is_empty(s.ceq));
    // Ring first (in posting order), then the scan in index order.
    assert_eq!(s.recv().map(|m| m.ev_type), Some(5));
    assert_eq!(s.recv().map(|m| m.ev_type), Some(1));
    let m = s.recv().unwrap();
    assert_eq!((m.ev_type, m.ev_arg4), (7, 107));
    assert!(
        s.ceq.overflow_recovery.load(Ordering::Relaxed),
        "scan unfinished"
    );
    assert!(
        !s.ceq.ring_overflowed.load(Ordering::Relaxed),
        "cleared when the scan started"
    );
    assert_eq!(
        s.ceq.last_recovered.load(Ordering::Relaxed),
        8,
        "resumes after index 7"
    );
    assert!(!ceq::is_empty(s.ceq), "an unfinished scan is not empty");
    // Meanwhile a new event arrives in the (now free) ring.
    assert_eq!(s.send(2, 1), Ok(Posted::Ring));
    let rest: Vec<_> = s.drain();
    assert_eq!(rest, vec![(2, 1), (20, 120), (30, 130)]);
    assert!(!s.ceq.overflow_recovery.load(Ordering::Relaxed));
    assert!(ceq::is_empty(s.ceq));
    assert_eq!(s.stats.snapshot().overflows, 3);
}

#[test]
fn overflow_during_a_scan_restarts_it() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Add, 16, 1);
    s.send(9, 1).unwrap(); // ring
    s.send(10, 1).unwrap(); // overflow
    s.send(12, 1).unwrap(); // overflow
    assert_eq!(s.recv().unwrap().ev_type, 9);
    assert_eq!(s.recv().unwrap().ev_type, 10);
    // The scan is past index 3 when index 3 overflows (ring still full? no:
    // ring is empty now, so fill it first).
    s.send(1, 1).unwrap(); // ring
    assert_eq!(s.send(3, 5), Ok(Posted::Overflowed));
    let rest = s.drain();
    assert_eq!(
        rest,
        vec![(1, 1), (12, 1), (3, 5)],
        "index 3 found by a restarted scan"
    );
    assert!(ceq::is_empty(s.ceq));
}

#[test]
fn spurious_and_stale_ring_entries_are_skipped() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Or, 4, 4);
    s.send(2, 1).unwrap();
    // The process itself consumed the entry behind the ring's back.
    s.events[2].idx_posted.store(false, Ordering::Relaxed);
    assert!(s.recv().is_none());
    assert!(ceq::is_empty(s.ceq));
    // A garbage index in the ring is ignored rather than followed.
    s.ceq.prod_idx.store(
        s.ceq.prod_idx.load(Ordering::Relaxed) + 1,
        Ordering::Relaxed,
    );
    s.ring[1].store(1_000_000, Ordering::Relaxed);
    assert!(s.recv().is_none());
}

#[test]
fn bad_pointers_drop_only_that_event() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Add, 8, 4);
    let good_events = s.ceq.events.load(Ordering::Relaxed);
    s.ceq
        .events
        .store(a.user_range().end - 64, Ordering::Relaxed);
    assert!(matches!(s.send(7, 1), Err(SendError::BadEvent(_))));
    s.ceq.events.store(good_events, Ordering::Relaxed);
    let good_ring = s.ceq.ring.load(Ordering::Relaxed);
    s.ceq.ring.store(0, Ordering::Relaxed);
    assert!(matches!(
        s.send(7, 1),
        Err(SendError::BadRing { addr: 0, .. })
    ));
    s.ceq.ring.store(good_ring, Ordering::Relaxed);
    assert_eq!(s.stats.snapshot().dropped_bad_addr, 2);
    assert!(a.guards_intact());
    assert!(a.user_ref::<Ceq>(s.ceq as *const Ceq as usize).is_some());
}

#[test]
fn garbage_ring_size_never_indexes_outside() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Add, 8, 4);
    for sz in [0u32, 3, u32::MAX, 1 << 31] {
        s.ceq.ring_sz.store(sz, Ordering::Relaxed);
        s.ceq.prod_idx.store(5, Ordering::Relaxed);
        s.ceq.cons_pub_idx.store(0, Ordering::Relaxed);
        s.events[1].idx_posted.store(false, Ordering::Relaxed);
        let _ = s.send(1, 1);
    }
    assert!(a.guards_intact());
}

/// A ring the producer cannot use is found before anything is written:
/// the entry is not coalesced into, not marked posted, `prod_idx` and
/// `max_event_ever` do not move. (Validating only after posting left the
/// value in an entry marked posted that no consumer looks for, and every
/// later send to it said "already posted".)
#[test]
fn bad_ring_is_refused_before_any_write() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Add, 8, 4);
    let good_ring = s.ceq.ring.load(Ordering::Relaxed);
    for (ring, sz) in [
        (a.user_range().end - 8, 4),
        (good_ring + 2, 4),
        (good_ring, 0),
        (good_ring, 3),
        (good_ring, 1 << 20),
    ] {
        s.ceq.ring.store(ring, Ordering::Relaxed);
        s.ceq.ring_sz.store(sz, Ordering::Relaxed);
        assert_eq!(
            s.send(5, 9),
            Err(SendError::BadRing {
                addr: ring,
                ring_sz: sz
            })
        );
        assert_eq!(s.events[5].coalesce.load(Ordering::Relaxed), 0);
        assert!(!s.events[5].idx_posted.load(Ordering::Relaxed));
        assert_eq!(s.events[5].blob_data.load(Ordering::Relaxed), 0);
        assert_eq!(s.ceq.prod_idx.load(Ordering::Relaxed), 0);
        assert_eq!(s.ceq.max_event_ever.load(Ordering::Relaxed), 0);
    }
    s.ceq.ring.store(good_ring, Ordering::Relaxed);
    s.ceq.ring_sz.store(4, Ordering::Relaxed);
    assert_eq!(s.send(5, 9), Ok(Posted::Ring), "not 'already posted'");
    assert_eq!(s.drain(), vec![(5, 9)]);
    assert_eq!(s.stats.snapshot().dropped_bad_addr, 5);
    assert!(a.guards_intact());
}

/// A process that corrupts its own `ring_sz` (to 0, or to a size that is
/// not a power of two) while indices say the ring holds entries: a
/// consumer made from the queue neither panics nor reads past the ring
/// (`ring_sz - 1` unchecked wrapped to a mask of all ones in release
/// builds and read far outside it), and events still arrive by the scan.
#[test]
fn corrupt_ring_size_is_safe_for_consumers() {
    let a = arena();
    let s = Setup::new(&a, CeqOp::Or, 4, 4);
    s.send(2, 0b10).unwrap();
    for sz in [0u32, 3, 6] {
        s.ceq.ring_sz.store(sz, Ordering::Relaxed);
        // A huge position: with an unmasked or all-ones index it would land
        // far outside the ring.
        s.ceq.cons_pvt_idx.store(1 << 40, Ordering::Relaxed);
        s.ceq.cons_pub_idx.store(1 << 40, Ordering::Relaxed);
        s.ceq.prod_idx.store((1 << 40) + 1, Ordering::Relaxed);
        let c = s.attached();
        assert!(c.try_recv(&Spin).is_none(), "ring_sz {sz}: nothing to find");
    }
    // Flag an overflow: the scan finds the event without the ring.
    s.ceq.ring_sz.store(0, Ordering::Relaxed);
    s.ceq.ring_overflowed.store(true, Ordering::Relaxed);
    let m = s.attached().try_recv(&Spin).expect("found by the scan");
    assert_eq!((m.ev_type, m.ev_arg4), (2, 0b10));
    assert!(a.guards_intact());
}
