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
use vcpd_abi::sync::Ordering;
use vcpd_abi::{EventMsg, Slot, Ucq, UcqPage, UserMemory};

/// The process's memory in the model: a UCQ head and two pages.
struct Env {
    ucq: Box<Ucq>,
    pages: [Box<UcqPage>; 2],
    locks: HashLocks<1>,
    freed: Mutex<Vec<usize>>,
}

impl Env {
    fn new() -> Arc<Self> {
        let env = Self {
            ucq: Box::new(Ucq::default()),
            pages: [Box::new(UcqPage::new()), Box::new(UcqPage::new())],
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
        env.ucq.ucq_ready.store(true, Ordering::Release);
        Arc::new(env)
    }

    fn page_addr(&self, i: usize) -> usize {
        (&*self.pages[i] as *const UcqPage).expose_provenance()
    }

    fn regions(&self) -> [(usize, usize); 3] {
        let u = (&*self.ucq as *const Ucq).expose_provenance();
        [
            (u, size_of::<Ucq>()),
            (self.page_addr(0), size_of::<UcqPage>()),
            (self.page_addr(1), size_of::<UcqPage>()),
        ]
    }
}

// SAFETY: only addresses inside the boxes the environment owns (and keeps
// alive for as long as `&self`) are accepted; provenance was exposed.
unsafe impl UserMemory for Env {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        let ok = self
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
        self.freed.lock().unwrap().push(page);
    }
}

fn msg(producer: u16, seq: u64) -> EventMsg {
    EventMsg::new(1).with_arg1(producer).with_arg4(seq)
}

fn consume(env: &Env, n: usize) -> Vec<EventMsg> {
    let mut got = Vec::new();
    while got.len() < n {
        match ucq::try_recv(&env.ucq, env) {
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
    assert!(ucq::try_recv(&env.ucq, env).is_none());
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
            let n = ucq::try_recv_batch(&env.ucq, &*env, &mut buf);
            if n == 0 {
                thread::yield_now();
            }
            got.extend_from_slice(&buf[..n]);
        }
        producer.join().unwrap();
        check_after(&env, &got, &sent);
    });
}
