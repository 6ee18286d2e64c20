//! One test per producer/consumer path of the UCQ, single-threaded, on the
//! simulated process arena.

#![cfg(not(loom))]

use core::sync::atomic::Ordering;

use ucq::{ArenaHost, SendError, UcqStats, UserPageAlloc};
use vcpd_abi::ucq::{NR_MSG_PER_PAGE, PAGE_SIZE};
use vcpd_abi::{EventMsg, Slot, Ucq, UcqPage, UserMemoryExt};

struct Setup {
    host: ArenaHost,
    ucq_addr: usize,
    stats: UcqStats,
}

impl Setup {
    fn new() -> Self {
        let host = ArenaHost::new(256 * PAGE_SIZE);
        let ucq_addr = host.arena.alloc(size_of::<Ucq>(), 64).unwrap();
        Self {
            host,
            ucq_addr,
            stats: UcqStats::new(),
        }
    }

    fn ucq(&self) -> &Ucq {
        self.host.user_ref::<Ucq>(self.ucq_addr).unwrap()
    }

    fn init(&self) -> (usize, usize) {
        let a = self.host.alloc_user_page().unwrap();
        let b = self.host.alloc_user_page().unwrap();
        // SAFETY: two distinct fresh pages of the arena, the simulated
        // process's own memory, which outlives the queue.
        unsafe { ucq::init(self.ucq(), a, b) }.unwrap();
        (a, b)
    }

    fn send(&self, n: u64) -> Result<(), SendError> {
        ucq::send(self.ucq(), &msg(n), &self.host, &self.stats)
    }

    fn recv(&self) -> Option<EventMsg> {
        self.cons().try_recv(&self.host)
    }

    fn cons(&self) -> ucq::Consumer<'_> {
        // SAFETY: the queue and every page it names live in the arena (the
        // simulated process's own memory), which lives as long as `self`;
        // pages leave it only through the consumer's `free_page`.
        unsafe { ucq::Consumer::new(self.ucq()) }
    }

    fn page(&self, addr: usize) -> &UcqPage {
        self.host.user_ref::<UcqPage>(addr).unwrap()
    }
}

fn msg(n: u64) -> EventMsg {
    EventMsg::new(7)
        .with_arg2(n as u32)
        .with_arg3(n as usize)
        .with_arg4(n)
}

#[test]
fn uninitialised_queue_drops_and_counts() {
    let s = Setup::new();
    assert_eq!(s.send(1), Err(SendError::NotReady));
    assert_eq!(s.stats.snapshot().dropped_not_ready, 1);
    assert!(s.recv().is_none());
    assert!(ucq::is_empty(s.ucq()));
}

#[test]
fn init_rejects_bad_pages() {
    let s = Setup::new();
    let p = s.host.alloc_user_page().unwrap();
    // SAFETY: refused before anything is stored (what the test checks).
    let init = |a, b| unsafe { ucq::init(s.ucq(), a, b) }.err();
    assert_eq!(init(0, p), Some(ucq::InitError::BadPage(0)));
    assert_eq!(init(p + 8, p), Some(ucq::InitError::BadPage(p + 8)));
    assert_eq!(init(p, p), Some(ucq::InitError::SamePage));
    assert!(!s.ucq().ucq_ready.load(Ordering::Relaxed));
}

#[test]
fn fast_path_round_trip_in_order() {
    let s = Setup::new();
    let (first, _) = s.init();
    for i in 0..10 {
        s.send(i).unwrap();
    }
    assert_eq!(s.ucq().prod_idx.load(Ordering::Relaxed), first + 10);
    assert!(!ucq::is_empty(s.ucq()));
    for i in 0..10 {
        assert_eq!(s.recv(), Some(msg(i)));
    }
    assert!(s.recv().is_none());
    assert!(ucq::is_empty(s.ucq()));
    let st = s.stats.snapshot();
    assert_eq!((st.posted, st.slow_paths, st.page_switches), (10, 0, 0));
    // Consumed containers are cleared for reuse and counted on the page.
    assert!(!s.page(first).msgs[3].ready.load(Ordering::Relaxed));
    assert_eq!(s.page(first).header.nr_cons.load(Ordering::Relaxed), 10);
}

#[test]
fn page_switch_uses_spare_and_keeps_slot_zero() {
    let s = Setup::new();
    let (first, spare) = s.init();
    for i in 0..NR_MSG_PER_PAGE as u64 {
        s.send(i).unwrap();
    }
    assert_eq!(s.stats.snapshot().page_switches, 0);
    s.send(1000).unwrap();
    let st = s.stats.snapshot();
    assert_eq!(
        (
            st.slow_paths,
            st.page_switches,
            st.spares_used,
            st.pages_allocated
        ),
        (1, 1, 1, 0)
    );
    assert_eq!(
        s.ucq().prod_idx.load(Ordering::Relaxed),
        Slot::new(spare, 1).0
    );
    assert_eq!(s.ucq().spare_pg.load(Ordering::Relaxed), 0);
    assert_eq!(
        s.page(first).header.cons_next_pg.load(Ordering::Relaxed),
        spare
    );
    assert!(
        s.page(spare).msgs[0].ready.load(Ordering::Relaxed),
        "switcher wrote slot 0"
    );
    assert!(!s.ucq().prod_overflow.load(Ordering::Relaxed));
    for i in 0..NR_MSG_PER_PAGE as u64 {
        assert_eq!(s.recv(), Some(msg(i)));
    }
    // Crossing the page: the consumer follows the link and recycles `first`.
    assert_eq!(s.recv(), Some(msg(1000)));
    assert_eq!(
        s.ucq().spare_pg.load(Ordering::Relaxed),
        first,
        "old page became the spare"
    );
    assert_eq!(
        s.page(first).header.nr_cons.load(Ordering::Relaxed),
        0,
        "recycled header reset"
    );
    assert_eq!(s.page(first).header.cons_next_pg.load(Ordering::Relaxed), 0);
    assert!(s.recv().is_none());
}

#[test]
fn many_pages_allocate_then_recycle_spares() {
    let s = Setup::new();
    let (_, _) = s.init();
    let n = 5 * NR_MSG_PER_PAGE as u64 + 3;
    for i in 0..n {
        s.send(i).unwrap();
    }
    let st = s.stats.snapshot();
    assert_eq!(st.page_switches, 5);
    assert_eq!(st.spares_used, 1);
    assert_eq!(
        st.pages_allocated, 4,
        "producer ran ahead: fresh pages after the spare"
    );
    assert_eq!(s.ucq().nr_extra_pgs.load(Ordering::Relaxed), 4);
    let pages_before = s.host.arena.pages_out();
    for i in 0..n {
        assert_eq!(s.recv(), Some(msg(i)), "message {i}");
    }
    assert!(s.recv().is_none());
    // Each page left after the first one hands back the previous spare.
    assert_eq!(s.ucq().nr_extra_pgs.load(Ordering::Relaxed), 0);
    assert_eq!(s.host.arena.pages_out(), pages_before - 4);
    assert_ne!(s.ucq().spare_pg.load(Ordering::Relaxed), 0);
    // Steady state: the spare ping-pongs and no page is allocated any more.
    for i in 0..3 * NR_MSG_PER_PAGE as u64 {
        s.send(i).unwrap();
        assert_eq!(s.recv(), Some(msg(i)));
    }
    assert_eq!(s.stats.snapshot().pages_allocated, 4);
}

#[test]
fn overflow_flag_sends_producers_to_the_lock() {
    let s = Setup::new();
    let (first, spare) = s.init();
    s.send(0).unwrap();
    // Another producer is mid-switch: the flag alone diverts us to the lock,
    // where the slot we then claim is still good.
    s.ucq().prod_overflow.store(true, Ordering::Relaxed);
    s.send(1).unwrap();
    assert_eq!(s.stats.snapshot().slow_paths, 1);
    assert_eq!(s.stats.snapshot().page_switches, 0);
    assert!(
        !s.ucq().prod_overflow.load(Ordering::Relaxed),
        "cleared on unlock"
    );
    assert_eq!(s.ucq().prod_idx.load(Ordering::Relaxed), first + 2);
    assert_eq!(s.ucq().spare_pg.load(Ordering::Relaxed), spare);
    assert_eq!(s.recv(), Some(msg(0)));
    assert_eq!(s.recv(), Some(msg(1)));
}

#[test]
fn scribbled_prod_idx_costs_one_message_and_recovers() {
    let s = Setup::new();
    let (_, spare) = s.init();
    // Process writes a page outside its memory into prod_idx.
    let outside = s.host.arena.user_range().end + 7 * PAGE_SIZE;
    s.ucq()
        .prod_idx
        .store(Slot::new(outside, 3).0, Ordering::Relaxed);
    assert_eq!(
        s.send(1),
        Err(SendError::BadSlot(Slot::new(outside, 3).container_addr()))
    );
    // Now a bad slot number on a bad page: the switch refuses the old page.
    s.ucq()
        .prod_idx
        .store(Slot::new(outside, 500).0, Ordering::Relaxed);
    assert_eq!(s.send(2), Err(SendError::BadOldPage(outside)));
    assert!(
        !s.ucq().prod_overflow.load(Ordering::Relaxed),
        "flag cleared after a failed switch"
    );
    assert_eq!(
        s.ucq().spare_pg.load(Ordering::Relaxed),
        spare,
        "spare untouched on early failure"
    );
    assert_eq!(s.stats.snapshot().dropped_bad_addr, 2);
    assert!(s.host.arena.guards_intact());
    assert!(s.host.arena.rejected_checks() >= 2);
}

#[test]
fn bad_spare_page_is_refused() {
    let s = Setup::new();
    let (first, _) = s.init();
    for i in 0..NR_MSG_PER_PAGE as u64 {
        s.send(i).unwrap();
    }
    s.ucq().spare_pg.store(first + 8, Ordering::Relaxed); // unaligned
    assert_eq!(s.send(9), Err(SendError::BadSparePage(first + 8)));
    s.ucq()
        .spare_pg
        .store(usize::MAX & !(PAGE_SIZE - 1), Ordering::Relaxed); // not user memory
    assert!(matches!(s.send(9), Err(SendError::BadSparePage(_))));
    // With no spare, the host's page is used and the queue carries on.
    s.send(10).unwrap();
    assert_eq!(s.stats.snapshot().pages_allocated, 1);
    assert!(s.host.arena.guards_intact());
}

#[test]
fn out_of_pages_drops_and_counts() {
    let host = ArenaHost::new(3 * PAGE_SIZE);
    let ucq_addr = host.arena.alloc(size_of::<Ucq>(), 64).unwrap();
    let q = host.user_ref::<Ucq>(ucq_addr).unwrap();
    let (a, b) = (
        host.alloc_user_page().unwrap(),
        host.alloc_user_page().unwrap(),
    );
    // SAFETY: two fresh arena pages; the arena outlives the queue.
    let cons = unsafe { ucq::init(q, a, b) }.unwrap();
    let stats = UcqStats::new();
    // Fill the first page and the spare; the third page cannot be allocated.
    for i in 0..2 * NR_MSG_PER_PAGE as u64 {
        ucq::send(q, &msg(i), &host, &stats).unwrap();
    }
    assert_eq!(
        ucq::send(q, &msg(1), &host, &stats),
        Err(SendError::OutOfPages)
    );
    assert_eq!(stats.snapshot().dropped_no_memory, 1);
    assert_eq!(
        q.nr_extra_pgs.load(Ordering::Relaxed),
        0,
        "failed allocation not counted as a page"
    );
    // Draining frees nothing (both pages are the queue's own) but the queue
    // stays usable: after the consumer recycles a page, sends succeed again.
    for i in 0..NR_MSG_PER_PAGE as u64 + 1 {
        assert_eq!(cons.try_recv(&host), Some(msg(i)));
    }
    ucq::send(q, &msg(77), &host, &stats).unwrap();
}

#[test]
fn batch_receive_stops_at_prod_idx_page_end_and_buffer() {
    let s = Setup::new();
    let (first, _) = s.init();
    let mut out = [EventMsg::default(); 8];
    assert_eq!(s.cons().try_recv_batch(&s.host, &mut out), 0, "empty");
    for i in 0..5 {
        s.send(i).unwrap();
    }
    assert_eq!(
        s.cons().try_recv_batch(&s.host, &mut out[..3]),
        3,
        "buffer bound"
    );
    assert_eq!(&out[..3], &[msg(0), msg(1), msg(2)]);
    assert_eq!(
        s.cons().try_recv_batch(&s.host, &mut out),
        2,
        "prod_idx bound"
    );
    assert_eq!(&out[..2], &[msg(3), msg(4)]);
    assert_eq!(s.page(first).header.nr_cons.load(Ordering::Relaxed), 5);
    // Fill to the end of the page and beyond: a claim never spans a page,
    // but a batch that reaches a page's end goes on with the next page, so
    // only a batch that found nothing more comes back short.
    for i in 5..NR_MSG_PER_PAGE as u64 + 4 {
        s.send(i).unwrap();
    }
    let mut got = vec![];
    let mut sizes = vec![];
    loop {
        let n = s.cons().try_recv_batch(&s.host, &mut out);
        if n == 0 {
            break;
        }
        sizes.push(n);
        got.extend_from_slice(&out[..n]);
    }
    let want: Vec<_> = (5..NR_MSG_PER_PAGE as u64 + 4).map(msg).collect();
    assert_eq!(got, want);
    // 122 slots left on the first page: 15 batches of 8, then its last 2
    // and the next page's 4 in one batch (two claims).
    let mut expected = vec![8; 15];
    expected.push(6);
    assert_eq!(sizes, expected);
    assert_eq!(
        s.page(first).header.nr_cons.load(Ordering::Relaxed),
        0,
        "the first page was recycled within the batch"
    );
    assert_eq!(
        s.cons().try_recv_batch(&s.host, &mut []),
        0,
        "no room, no claim"
    );
}

/// A host whose page budget is `budget`, over the arena host.
struct Budgeted<'a>(&'a ArenaHost, u64);

// SAFETY: forwards to the arena host, which upholds the contract.
unsafe impl vcpd_abi::UserMemory for Budgeted<'_> {
    fn translate(&self, addr: usize, len: usize) -> Option<core::ptr::NonNull<u8>> {
        self.0.translate(addr, len)
    }
}

impl UserPageAlloc for Budgeted<'_> {
    fn alloc_user_page(&self) -> Option<usize> {
        self.0.alloc_user_page()
    }
    fn ucq_page_budget(&self) -> u64 {
        self.1
    }
}

impl ucq::UcqLocks for Budgeted<'_> {
    fn with_ucq_lock<R>(&self, key: usize, f: impl FnOnce() -> R) -> R {
        self.0.with_ucq_lock(key, f)
    }
}

/// A process that keeps forcing page switches (a bad slot in `prod_idx`,
/// no spare, its own `nr_extra_pgs` reset to 0) makes the kernel allocate
/// on every send, until the host's budget is spent: then sends drop with
/// `PageBudget`, counted, and not one page more is allocated, however long
/// it keeps going. A page the host sees returned buys one more.
#[test]
fn scribbler_cannot_make_the_kernel_allocate_past_the_budget() {
    let s = Setup::new();
    let (first, _) = s.init();
    let host = Budgeted(&s.host, 5);
    let out_before = s.host.arena.pages_out();
    let mut page = first;
    for i in 0..200u64 {
        let q = s.ucq();
        q.prod_idx
            .store(Slot::new(page, NR_MSG_PER_PAGE).0, Ordering::Relaxed);
        q.spare_pg.store(0, Ordering::Relaxed);
        q.nr_extra_pgs.store(0, Ordering::Relaxed);
        match ucq::send(q, &msg(i), &host, &s.stats) {
            Ok(()) => page = Slot(q.prod_idx.load(Ordering::Relaxed)).page(),
            Err(e) => assert_eq!(e, SendError::PageBudget, "send {i}"),
        }
    }
    let st = s.stats.snapshot();
    assert_eq!(st.pages_allocated, 5);
    assert_eq!(st.pages_held, 5);
    assert_eq!(st.dropped_page_budget, 195);
    assert_eq!(
        s.host.arena.pages_out(),
        out_before + 5,
        "no page past the budget"
    );
    // The host saw a page come back: exactly one more allocation.
    s.stats.page_returned();
    for i in 0..3 {
        s.ucq()
            .prod_idx
            .store(Slot::new(page, NR_MSG_PER_PAGE).0, Ordering::Relaxed);
        s.ucq().spare_pg.store(0, Ordering::Relaxed);
        let r = ucq::send(s.ucq(), &msg(i), &host, &s.stats);
        assert_eq!(r.is_ok(), i == 0, "send {i}: {r:?}");
        if r.is_ok() {
            page = Slot(s.ucq().prod_idx.load(Ordering::Relaxed)).page();
        }
    }
    assert_eq!(s.stats.snapshot().pages_allocated, 6);
    assert!(s.host.arena.guards_intact());
}

#[test]
fn default_budget_is_akaros_warning_threshold() {
    struct Plain;
    impl UserPageAlloc for Plain {
        fn alloc_user_page(&self) -> Option<usize> {
            None
        }
    }
    assert_eq!(Plain.ucq_page_budget(), ucq::UCQ_PAGE_BUDGET);
    assert_eq!(ucq::UCQ_PAGE_BUDGET, 1000);
}

/// `ArenaHost` as the kernel on CPU `cpu` sees it.
struct OnCpu<'a>(&'a ArenaHost, Option<usize>);

// SAFETY: forwards to `ArenaHost`, which upholds the contract.
unsafe impl vcpd_abi::UserMemory for OnCpu<'_> {
    fn translate(&self, addr: usize, len: usize) -> Option<core::ptr::NonNull<u8>> {
        self.0.translate(addr, len)
    }
}

impl UserPageAlloc for OnCpu<'_> {
    fn alloc_user_page(&self) -> Option<usize> {
        self.0.alloc_user_page()
    }
}

impl ucq::UcqLocks for OnCpu<'_> {
    fn with_ucq_lock<R>(&self, key: usize, f: impl FnOnce() -> R) -> R {
        self.0.with_ucq_lock(key, f)
    }

    fn cpu_index(&self) -> Option<usize> {
        self.1
    }
}

#[test]
fn posted_is_counted_per_cpu_and_summed() {
    let s = Setup::new();
    s.init();
    let sends = [
        (None, 2),
        (Some(0), 3),
        (Some(5), 4),
        (Some(ucq::UCQ_STAT_SHARDS - 1), 1),
        (Some(ucq::UCQ_STAT_SHARDS), 5),
        (Some(usize::MAX), 6),
    ];
    let mut n = 0;
    for (cpu, k) in sends {
        for _ in 0..k {
            ucq::send(s.ucq(), &msg(n), &OnCpu(&s.host, cpu), &s.stats).unwrap();
            n += 1;
        }
    }
    // No index, or one past the shards: the shared counter.
    assert_eq!(s.stats.posted.load(Ordering::Relaxed), 2 + 5 + 6);
    assert_eq!(s.stats.posted(), n);
    assert_eq!(s.stats.snapshot().posted, n);
    for i in 0..n {
        assert_eq!(s.recv(), Some(msg(i)));
    }
}
