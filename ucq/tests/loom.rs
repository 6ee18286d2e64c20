//! Loom models of the UCQ protocol across a page switch.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ucq
//! --test loom --release`. The queue starts two slots before the end of its
//! first page (as if 125 messages had already passed), so a handful of
//! sends exercise the whole switch: `prod_overflow`, the producer lock, the
//! spare page, the link, the consumer's page advance and the recycling of
//! the old page as the new spare.

#![cfg(loom)]

use std::collections::HashSet;
use std::ptr::NonNull;
use std::sync::Mutex;

use loom::sync::Arc;
use loom::thread;
use ucq::{ConsumerHost, HashLocks, UcqLocks, UcqStats, UserPageAlloc};
use vcpd_abi::sync::{Ordering, poison};
use vcpd_abi::{EventMsg, Slot, Ucq, UcqPage, UserLock, UserMemory};

/// The process's memory in the model: a UCQ head and three pages.
struct Env {
    ucq: Box<Ucq>,
    pages: [Box<UcqPage>; 3],
    locks: HashLocks<1>,
    freed: Mutex<Vec<usize>>,
}

impl Env {
    fn new() -> Arc<Self> {
        let env = Self {
            ucq: Box::new(Ucq::default()),
            pages: [
                Box::new(UcqPage::new()),
                Box::new(UcqPage::new()),
                Box::new(UcqPage::new()),
            ],
            locks: HashLocks::new(),
            freed: Mutex::new(Vec::new()),
        };
        let (p0, p1) = (env.page_addr(0), env.page_addr(1));
        // Start 125 messages into the first page: they were all consumed.
        env.pages[0].header.nr_cons.store(125, Ordering::Relaxed);
        env.ucq
            .prod_idx
            .store(Slot::new(p0, 125).0, Ordering::Relaxed);
        env.ucq
            .cons_idx
            .store(Slot::new(p0, 125).0, Ordering::Relaxed);
        env.ucq.spare_pg.store(p1, Ordering::Relaxed);
        // Akaros's lock encoding: zeroed memory would be "held by vcore 0".
        UserLock(&env.ucq.u_lock).init();
        env.ucq.ucq_ready.store(true, Ordering::Release);
        Arc::new(env)
    }

    /// Producers two pages ahead of consumers: page 0 holds one unconsumed
    /// message in its last slot and links to page 1, where the producer has
    /// written slot 0 (`prod_idx` = page 1 | 1); page 2 is the spare a
    /// consumer recycled meanwhile, so recycling page 0 hands page 2 back
    /// to the host. Returns the two messages already in the queue.
    fn two_pages_ahead() -> (Arc<Self>, [EventMsg; 2]) {
        let env = Self::new();
        let (p0, p1, p2) = (env.page_addr(0), env.page_addr(1), env.page_addr(2));
        let queued = [msg(0, 0), msg(0, 1)];
        for (page, slot, m) in [(0, 126, &queued[0]), (1, 0, &queued[1])] {
            let c = &env.pages[page].msgs[slot];
            c.ev_msg.write(m);
            c.ready.store(true, Ordering::Release);
        }
        env.pages[0].header.nr_cons.store(126, Ordering::Relaxed);
        env.pages[0]
            .header
            .cons_next_pg
            .store(p1, Ordering::Relaxed);
        env.ucq
            .cons_idx
            .store(Slot::new(p0, 126).0, Ordering::Relaxed);
        env.ucq
            .prod_idx
            .store(Slot::new(p1, 1).0, Ordering::Relaxed);
        env.ucq.spare_pg.store(p2, Ordering::Relaxed);
        env.ucq.nr_extra_pgs.store(1, Ordering::Relaxed);
        (env, queued)
    }

    fn consumer(&self) -> ucq::Consumer<'_> {
        // SAFETY: the queue and its pages are boxes the environment owns
        // for as long as `&self`; freed pages are poisoned, and touching
        // one fails the model before any real access.
        unsafe { ucq::Consumer::new(&self.ucq) }
    }

    fn page_addr(&self, i: usize) -> usize {
        (&*self.pages[i] as *const UcqPage).expose_provenance()
    }

    fn regions(&self) -> [(usize, usize); 4] {
        let u = (&*self.ucq as *const Ucq).expose_provenance();
        [
            (u, size_of::<Ucq>()),
            (self.page_addr(0), size_of::<UcqPage>()),
            (self.page_addr(1), size_of::<UcqPage>()),
            (self.page_addr(2), size_of::<UcqPage>()),
        ]
    }
}

// SAFETY: only addresses inside the boxes the environment owns (and keeps
// alive for as long as `&self`) are accepted, never a freed page (a real
// kernel finds it unmapped); provenance was exposed.
unsafe impl UserMemory for Env {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        let ok = !poison::is_freed(addr, len)
            && self
                .regions()
                .iter()
                .any(|&(b, l)| addr >= b && addr.checked_add(len).is_some_and(|e| e <= b + l));
        if ok {
            NonNull::new(std::ptr::with_exposed_provenance_mut(addr))
        } else {
            None
        }
    }
}

impl UserPageAlloc for Env {
    fn alloc_user_page(&self) -> Option<usize> {
        None // the model's sends must get by with the spare
    }
}

impl UcqLocks for Env {
    fn with_ucq_lock<R>(&self, key: usize, f: impl FnOnce() -> R) -> R {
        self.locks.with_ucq_lock(key, f)
    }
}

impl ConsumerHost for Env {
    fn relax(&self) {
        thread::yield_now();
    }

    fn free_page(&self, page: usize) {
        // A real runtime unmaps it: from now on any access fails the model.
        poison::free(page, size_of::<UcqPage>());
        self.freed.lock().unwrap().push(page);
    }
}

fn msg(producer: u16, seq: u64) -> EventMsg {
    EventMsg::new(1).with_arg1(producer).with_arg4(seq)
}

fn consume(env: &Env, n: usize) -> Vec<EventMsg> {
    let mut got = Vec::new();
    while got.len() < n {
        match env.consumer().try_recv(env) {
            Some(m) => got.push(m),
            None => thread::yield_now(),
        }
    }
    got
}

fn check_after(env: &Env, got: &[EventMsg], expected: &[EventMsg]) {
    let set: HashSet<_> = got.iter().map(|m| (m.ev_arg1, m.ev_arg4)).collect();
    assert_eq!(set.len(), got.len(), "duplicate delivery: {got:?}");
    let want: HashSet<_> = expected.iter().map(|m| (m.ev_arg1, m.ev_arg4)).collect();
    assert_eq!(set, want, "lost or invented message");
    for p in 0..2u16 {
        let seqs: Vec<_> = got
            .iter()
            .filter(|m| m.ev_arg1 == p)
            .map(|m| m.ev_arg4)
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "producer {p} reordered: {seqs:?}"
        );
    }
    assert!(env.consumer().try_recv(env).is_none());
    // The queue moved to the second page and recycled the first as spare.
    assert_eq!(
        Slot(env.ucq.prod_idx.load(Ordering::Relaxed)).page(),
        env.page_addr(1)
    );
    assert_eq!(env.ucq.spare_pg.load(Ordering::Relaxed), env.page_addr(0));
    assert_eq!(env.pages[0].header.nr_cons.load(Ordering::Relaxed), 0);
    assert!(env.freed.lock().unwrap().is_empty());
}

/// One producer crosses the page boundary while one consumer follows.
#[test]
fn producer_and_consumer_across_a_page_switch() {
    loom::model(|| {
        let env = Env::new();
        let sent: Vec<_> = (0..3).map(|i| msg(0, i)).collect();
        let producer = {
            let (env, sent) = (env.clone(), sent.clone());
            thread::spawn(move || {
                let stats = UcqStats::new();
                for m in &sent {
                    ucq::send(&env.ucq, m, &*env, &stats).unwrap();
                }
                assert_eq!(stats.snapshot().page_switches, 1);
            })
        };
        let got = consume(&env, 3);
        producer.join().unwrap();
        check_after(&env, &got, &sent);
    });
}

/// Two producers race for the last slots and the switch lock; the consumer
/// follows the link.
#[test]
fn two_producers_race_the_switch() {
    loom::model(|| {
        let env = Env::new();
        let sent = [msg(0, 0), msg(0, 1), msg(1, 0)];
        let producers: Vec<_> = [vec![sent[0], sent[1]], vec![sent[2]]]
            .into_iter()
            .map(|mine| {
                let env = env.clone();
                thread::spawn(move || {
                    let stats = UcqStats::new();
                    for m in &mine {
                        ucq::send(&env.ucq, m, &*env, &stats).unwrap();
                    }
                })
            })
            .collect();
        let got = consume(&env, 3);
        for p in producers {
            p.join().unwrap();
        }
        check_after(&env, &got, &sent);
    });
}

/// A batch consumer (up to 4 per claim) across the page switch: claims
/// stop at `prod_idx` and at the page's end, and nothing is lost or seen
/// twice.
#[test]
fn batch_consumer_across_a_page_switch() {
    loom::model(|| {
        let env = Env::new();
        let sent: Vec<_> = (0..3).map(|i| msg(0, i)).collect();
        let producer = {
            let (env, sent) = (env.clone(), sent.clone());
            thread::spawn(move || {
                let stats = UcqStats::new();
                for m in &sent {
                    ucq::send(&env.ucq, m, &*env, &stats).unwrap();
                }
            })
        };
        let mut got = Vec::new();
        let mut buf = [EventMsg::default(); 4];
        while got.len() < 3 {
            let n = env.consumer().try_recv_batch(&*env, &mut buf);
            if n == 0 {
                thread::yield_now();
            }
            got.extend_from_slice(&buf[..n]);
        }
        producer.join().unwrap();
        check_after(&env, &got, &sent);
    });
}

/// Drains with batches of up to `max`, until `want` messages or `stop`.
fn consume_batches(env: &Env, want: usize, max: usize) -> Vec<EventMsg> {
    let mut got = Vec::new();
    let mut buf = [EventMsg::default(); 4];
    while got.len() < want {
        let n = env.consumer().try_recv_batch(env, &mut buf[..max]);
        if n == 0 {
            thread::yield_now();
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Two consumers (racing with `try_recv_batch` or `try_recv`) each take
/// messages until `total` reaches `want`; returns what each got.
fn two_consumers(env: &Arc<Env>, want: usize, batch: usize) -> [Vec<EventMsg>; 2] {
    let total = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
    let run = move |env: &Env, total: &loom::sync::atomic::AtomicUsize| {
        let mut got = Vec::new();
        let mut buf = [EventMsg::default(); 4];
        while total.load(Ordering::Acquire) < want {
            let n = env.consumer().try_recv_batch(env, &mut buf[..batch]);
            total.fetch_add(n, Ordering::AcqRel);
            got.extend_from_slice(&buf[..n]);
            if n == 0 {
                thread::yield_now();
            }
        }
        got
    };
    let other = {
        let (env, total) = (env.clone(), total.clone());
        thread::spawn(move || run(&env, &total))
    };
    let mine = run(env, &total);
    [mine, other.join().unwrap()]
}

/// Each consumer's messages are in order; merged, none lost or duplicated.
fn merge(lists: [Vec<EventMsg>; 2]) -> Vec<EventMsg> {
    for l in &lists {
        assert!(l.windows(2).all(|w| w[0].ev_arg4 < w[1].ev_arg4), "{l:?}");
    }
    let mut got: Vec<_> = lists.into_iter().flatten().collect();
    got.sort_by_key(|m| m.ev_arg4);
    got
}

/// Two batch consumers race across a page boundary: the first page's last
/// two messages and the next page's first are already queued. One consumer
/// recycles the first page (handing it to the producer as the spare);
/// the other may have read `cons_idx` on that page just before. A claim
/// must not touch its page before the compare-and-swap confirms it:
/// re-introducing the read of the page header before the CAS (to size the
/// batch) makes this model fail with "consumer touched a page it holds no
/// claim on".
#[test]
fn two_batch_consumers_touch_no_unclaimed_page() {
    loom::model(|| {
        let env = Env::new();
        let (p0, p1) = (env.page_addr(0), env.page_addr(1));
        let sent: Vec<_> = (0..3).map(|i| msg(0, i)).collect();
        for (page, slot, m) in [(0, 125, &sent[0]), (0, 126, &sent[1]), (1, 0, &sent[2])] {
            let c = &env.pages[page].msgs[slot];
            c.ev_msg.write(m);
            c.ready.store(true, Ordering::Release);
        }
        // The producer switched to the spare (page 1) and kept its slot 0.
        env.ucq.spare_pg.store(0, Ordering::Relaxed);
        env.ucq
            .prod_idx
            .store(Slot::new(p1, 1).0, Ordering::Relaxed);
        env.pages[0]
            .header
            .cons_next_pg
            .store(p1, Ordering::Release);
        let got = merge(two_consumers(&env, 3, 4));
        assert_eq!(env.ucq.spare_pg.load(Ordering::Relaxed), p0);
        assert_eq!(got, sent);
        assert!(env.consumer().try_recv(&*env).is_none());
    });
}

/// Producers ran two pages ahead, so recycling the old page finds a spare
/// already there and hands it back to the host, which unmaps (poisons) it.
/// Nobody touches it afterwards, the queue's page count drops back, and a
/// producer keeps sending meanwhile.
#[test]
fn surplus_spare_is_freed_and_never_touched() {
    loom::model(|| {
        let (env, queued) = Env::two_pages_ahead();
        let late = msg(1, 0);
        let producer = {
            let env = env.clone();
            thread::spawn(move || {
                let stats = UcqStats::new();
                ucq::send(&env.ucq, &late, &*env, &stats).unwrap();
                assert_eq!(stats.dropped(), 0);
            })
        };
        let got = consume_batches(&env, 3, 1);
        producer.join().unwrap();
        let mut want = queued.to_vec();
        want.push(late);
        let set: HashSet<_> = got.iter().map(|m| (m.ev_arg1, m.ev_arg4)).collect();
        let want: HashSet<_> = want.iter().map(|m| (m.ev_arg1, m.ev_arg4)).collect();
        assert_eq!(set, want);
        assert_eq!(got.len(), 3, "no duplicates");
        assert!(env.consumer().try_recv(&*env).is_none());
        assert_eq!(*env.freed.lock().unwrap(), vec![env.page_addr(2)]);
        assert!(poison::is_freed(env.page_addr(2), 1));
        assert_eq!(env.ucq.spare_pg.load(Ordering::Relaxed), env.page_addr(0));
        assert_eq!(env.ucq.nr_extra_pgs.load(Ordering::Relaxed), 0);
    });
}
