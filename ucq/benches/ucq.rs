//! UCQ throughput and latency against general-purpose unbounded queues,
//! measured in the same run, printed as ratios.
//!
//! `cargo bench -p ucq` (or `cargo bench -p ucq -- --quick`). Peers:
//! `crossbeam_queue::SegQueue` and `concurrent_queue::ConcurrentQueue::unbounded`,
//! carrying the same 24-byte `EventMsg`. Trials of the contenders are
//! interleaved and the median is reported, because the machine is noisy.
//! The UCQ pays for things the peers do not: every address is checked
//! against the process's range and the memory layout is fixed by the ABI.

#![allow(missing_docs)] // a benchmark binary
#![allow(clippy::print_stdout)] // it reports by printing

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

use concurrent_queue::ConcurrentQueue;
use crossbeam_queue::SegQueue;
use ucq::{ArenaHost, UcqStats, UserPageAlloc};
use vcpd_abi::{EventMsg, Ucq, UserMemoryExt};

trait Queue: Send + Sync {
    const NAME: &'static str;
    fn new() -> Self;
    fn push(&self, m: EventMsg);
    fn pop(&self) -> Option<EventMsg>;
    /// Takes up to `out.len()` messages; one at a time unless the queue can do better.
    fn pop_batch(&self, out: &mut [EventMsg]) -> usize {
        match self.pop() {
            Some(m) => {
                out[0] = m;
                1
            }
            None => 0,
        }
    }
}

struct UcqQueue {
    host: ArenaHost,
    addr: usize,
    stats: UcqStats,
}

/// The same UCQ, drained with `try_recv_batch` (16 per claim).
struct UcqBatch(UcqQueue);

impl Queue for UcqBatch {
    const NAME: &'static str = "ucq (batch drain)";
    fn new() -> Self {
        Self(UcqQueue::new())
    }
    fn push(&self, m: EventMsg) {
        self.0.push(m);
    }
    fn pop(&self) -> Option<EventMsg> {
        self.0.pop()
    }
    fn pop_batch(&self, out: &mut [EventMsg]) -> usize {
        self.0.cons().try_recv_batch(&Spinning(&self.0.host), out)
    }
}

impl UcqQueue {
    fn q(&self) -> &Ucq {
        self.host.user_ref(self.addr).expect("ucq in arena")
    }

    fn cons(&self) -> ucq::Consumer<'_> {
        // SAFETY: the queue and its pages live in the arena (the simulated
        // process's own memory), which lives as long as `self`.
        unsafe { ucq::Consumer::new(self.q()) }
    }
}

impl Queue for UcqQueue {
    const NAME: &'static str = "ucq";
    fn new() -> Self {
        let host = ArenaHost::new(128 << 20);
        // Touch every page now: first-touch page faults of the host OS are
        // not part of the UCQ (the peers reuse warm heap memory).
        let range = host.arena.user_range();
        for page in range.step_by(vcpd_abi::PAGE_SIZE) {
            host.arena.write_u64(page, 0);
        }
        let addr = host.arena.alloc(size_of::<Ucq>(), 64).unwrap();
        let q = Self {
            host,
            addr,
            stats: UcqStats::new(),
        };
        let (a, b) = (
            q.host.alloc_user_page().unwrap(),
            q.host.alloc_user_page().unwrap(),
        );
        // SAFETY: two fresh arena pages; the arena outlives the queue.
        unsafe { ucq::init(q.q(), a, b) }.unwrap();
        q
    }
    fn push(&self, m: EventMsg) {
        ucq::send(self.q(), &m, &self.host, &self.stats).expect("send");
    }
    fn pop(&self) -> Option<EventMsg> {
        self.cons().try_recv(&Spinning(&self.host))
    }
}

/// The consumer's runtime in the benchmark: spin with the CPU's pause hint
/// while waiting for a producer (the arena host yields the thread instead,
/// which suits oversubscribed stress tests, not a throughput measurement).
struct Spinning<'a>(&'a ArenaHost);

impl ucq::ConsumerHost for Spinning<'_> {
    fn free_page(&self, page: usize) {
        self.0.arena.free_page(page);
    }
}

impl Queue for SegQueue<EventMsg> {
    const NAME: &'static str = "crossbeam SegQueue";
    fn new() -> Self {
        SegQueue::new()
    }
    fn push(&self, m: EventMsg) {
        SegQueue::push(self, m);
    }
    fn pop(&self) -> Option<EventMsg> {
        SegQueue::pop(self)
    }
}

impl Queue for ConcurrentQueue<EventMsg> {
    const NAME: &'static str = "concurrent-queue unbounded";
    fn new() -> Self {
        ConcurrentQueue::unbounded()
    }
    fn push(&self, m: EventMsg) {
        ConcurrentQueue::push(self, m).expect("unbounded");
    }
    fn pop(&self) -> Option<EventMsg> {
        ConcurrentQueue::pop(self).ok()
    }
}

/// Nanoseconds per message for `total` messages through `p` producers and
/// `c` consumers.
fn mpmc<Q: Queue + 'static>(p: usize, c: usize, total: usize) -> f64 {
    let q = Arc::new(Q::new());
    let done = Arc::new(AtomicUsize::new(0));
    let per = total / p;
    let start = Instant::now();
    let mut threads = Vec::new();
    for id in 0..p {
        let q = q.clone();
        threads.push(thread::spawn(move || {
            for i in 0..per {
                q.push(EventMsg::new(1).with_arg1(id as u16).with_arg4(i as u64));
            }
        }));
    }
    for _ in 0..c {
        let (q, done) = (q.clone(), done.clone());
        threads.push(thread::spawn(move || {
            let mut buf = [EventMsg::default(); 16];
            while done.load(Ordering::Relaxed) < per * p {
                let n = q.pop_batch(&mut buf);
                if n > 0 {
                    std::hint::black_box(&buf[..n]);
                    done.fetch_add(n, Ordering::Relaxed);
                } else {
                    // Same back-off for every queue: an empty queue is not
                    // polled flat out (event consumers are notified, they
                    // do not spin on an empty mailbox).
                    for _ in 0..64 {
                        std::hint::spin_loop();
                    }
                }
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    start.elapsed().as_nanos() as f64 / (per * p) as f64
}

/// Nanoseconds per send+receive pair on one thread, with a short backlog.
fn single<Q: Queue>(n: usize) -> f64 {
    let q = Q::new();
    let start = Instant::now();
    for i in 0..n {
        q.push(EventMsg::new(1).with_arg4(i as u64));
        if i % 8 == 7 {
            for _ in 0..8 {
                std::hint::black_box(q.pop());
            }
        }
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the contenders in interleaved trials and prints each one's median
/// with its ratio to the first (the UCQ).
fn compare(label: &str, trials: usize, contenders: &[(&str, &dyn Fn() -> f64)]) {
    let mut results = vec![vec![]; contenders.len()];
    for _ in 0..trials {
        for (k, (_, run)) in contenders.iter().enumerate() {
            results[k].push(run());
        }
    }
    let medians: Vec<f64> = results.into_iter().map(median).collect();
    println!("{label}");
    for ((name, _), m) in contenders.iter().zip(&medians) {
        println!("    {name:<28} {m:8.1} ns/msg   {:.2}x", m / medians[0]);
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (trials, total) = if quick { (3, 200_000) } else { (7, 2_000_000) };
    println!(
        "UCQ vs peers ({trials} trials each, interleaved, median; ratio = time / ucq time, <1 is faster than ucq)"
    );
    println!(
        "machine: {} CPUs",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    compare(
        "single thread send+recv",
        trials,
        &[
            ("ucq", &|| single::<UcqQueue>(total)),
            (<SegQueue<EventMsg> as Queue>::NAME, &|| {
                single::<SegQueue<EventMsg>>(total)
            }),
            (<ConcurrentQueue<EventMsg> as Queue>::NAME, &|| {
                single::<ConcurrentQueue<EventMsg>>(total)
            }),
        ],
    );
    for (p, c) in [(1, 1), (2, 2)] {
        compare(
            &format!("{p} producer(s) / {c} consumer(s)"),
            trials,
            &[
                ("ucq", &|| mpmc::<UcqQueue>(p, c, total)),
                (UcqBatch::NAME, &|| mpmc::<UcqBatch>(p, c, total)),
                (<SegQueue<EventMsg> as Queue>::NAME, &|| {
                    mpmc::<SegQueue<EventMsg>>(p, c, total)
                }),
                (<ConcurrentQueue<EventMsg> as Queue>::NAME, &|| {
                    mpmc::<ConcurrentQueue<EventMsg>>(p, c, total)
                }),
            ],
        );
    }
}
