//! UCQ throughput against general-purpose queues, measured in the same run
//! and printed as ratios.
//!
//! `cargo bench -p ucq --bench ucq` (or `-- --quick` for a short run).
//!
//! Contenders, all carrying the same 24-byte `EventMsg`: the UCQ drained one
//! message per claim (`try_recv`, the baseline of every case) and in batches
//! of up to 16 (`try_recv_batch`); crossbeam's bounded `ArrayQueue(1024)`,
//! crossbeam's `SegQueue` and `concurrent_queue::ConcurrentQueue::unbounded`.
//!
//! Cases: one thread sending 8 and receiving 8 in turn; 1 producer / 1
//! consumer; 2 / 2; 4 / 1. Each trial runs every contender once, in an
//! order that rotates from trial to trial, so the machine's drift hits all
//! of them alike. The report gives each contender's median over trials,
//! the p10-p90 spread over trials (linear interpolation between the sorted
//! trials), the ratio to the baseline and, for the UCQ rows, the best
//! peer's median over ours (> 1: the UCQ is faster). The peers are the
//! unbounded queues, and `ArrayQueue` too in the single-thread case (a
//! ring: the floor for that access pattern). With threads, a bounded ring
//! is another contest (a full ring stops its producers, so it never grows
//! past 32 KiB and never runs into the cache misses of a growing queue):
//! there it is a reference row, not a peer. One
//! `BENCH<TAB>ucq<TAB>case / contender<TAB>median<TAB>ns/msg<TAB>ratio to
//! baseline<TAB>vs best peer<TAB>spread` line per row is for
//! `scripts/bench.sh`.
//!
//! What the UCQ's host does here, and why:
//! - The "kernel" checks every address through the test arena
//!   (`UserArena::translate`), as a kernel does; the UCQ head is checked
//!   once per thread, as event-core checks it once per send. Each thread is
//!   a "CPU" to `UcqStats` (`UcqLocks::cpu_index`).
//! - Pages: the arena is touched before a trial (no first-touch faults), and
//!   a page the consumer gives back goes to a pool the producer's page
//!   allocator takes from (zeroing it), instead of the arena's
//!   `free_page`, which `mprotect`s it: a system call and, with two
//!   threads, a TLB shootdown per page, which the peers' allocators never
//!   pay.
//! - Waiting: the consumer's `relax` pauses and yields the thread every
//!   32nd call, and the page-switch lock is a spin lock that yields every
//!   32nd spin: with more threads than the machine's cores, a thread must
//!   not spin through the time slice of the one it waits for (the peers'
//!   own back-off yields too). A kernel producer is never preempted holding
//!   the lock; benchmark threads are. (A `std` mutex there, which sleeps in
//!   the kernel, made the 4P/1C case 1.46 times slower.)
//! - A consumer that has drained the queue backs off (64 pauses, and a
//!   yield every 16th time) before polling again, whatever the queue: an
//!   event consumer is notified, it does not spin on an empty mailbox. A
//!   pop that found nothing tells it so; so does a batch drain that came
//!   back short, which `try_recv_batch` does only when it found no more
//!   messages published.
//! - Counters the harness updates on every batch and the UCQ's kernel-side
//!   statistics sit on cache lines of their own.
//!
//! For profiling: `UCQ_BENCH_CASE=<text>` runs only the cases whose name
//! contains it, `UCQ_BENCH_ONLY=<text>` only those contenders,
//! `UCQ_BENCH_TRIALS=<n>` sets the trials, and `UCQ_BENCH_VERBOSE=1`
//! prints every threaded trial: its time, when the producers were done,
//! messages per claim, and the UCQ's page switches and allocations (a
//! queue that grew allocated pages; one that kept up recycled its spare).

#![allow(missing_docs)] // a benchmark binary
#![allow(clippy::print_stdout)] // it reports by printing

use std::cell::Cell;
use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

use concurrent_queue::ConcurrentQueue;
use crossbeam_queue::{ArrayQueue, SegQueue};
use ucq::{UcqLocks, UcqStats, UserPageAlloc};
use vcpd_abi::arena::UserArena;
use vcpd_abi::sync::AtomicU64;
use vcpd_abi::ucq::{NR_MSG_PER_PAGE, PAGE_SIZE};
use vcpd_abi::{EventMsg, Ucq, UserMemory, UserMemoryExt};

/// Keeps a value on cache lines of its own (128 bytes: the adjacent-line
/// prefetcher moves lines in pairs).
#[repr(align(128))]
struct Padded<T>(T);

/// One contender: a queue shared by all threads of a trial.
trait Queue: Sync + Sized {
    const NAME: &'static str;
    /// Whether it is one of ours (compared with the best peer).
    const OURS: bool = false;
    /// Whether it drains in batches.
    const BATCHES: bool = false;
    type Handle<'a>: Handle
    where
        Self: 'a;
    /// A queue for a trial that may hold up to `backlog` messages at once.
    fn new(backlog: usize) -> Self;
    /// What thread number `thread` of a trial uses to push and pop.
    fn handle(&self, thread: usize) -> Self::Handle<'_>;
    /// Anything worth showing after a trial (`UCQ_BENCH_VERBOSE`).
    fn after(&self) -> String {
        String::new()
    }
}

trait Handle {
    fn push(&self, m: EventMsg);
    /// Takes up to `out.len()` messages (one unless the contender drains in
    /// batches); 0 if the queue is empty.
    fn pop_batch(&self, out: &mut [EventMsg]) -> usize;
}

/// Spin a little, then let another thread run (used by every contender's
/// harness loop alike).
fn backoff(step: &mut u32) {
    *step += 1;
    if *step % 16 == 0 {
        thread::yield_now();
    } else {
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
}

// ---- the UCQ and its simulated host ----

/// The kernel and process around the UCQ: the process's memory, the page
/// pool between the process's `free_page` and the kernel's
/// `alloc_user_page`, and the kernel's page-switch lock.
struct BenchHost {
    arena: UserArena,
    pool: Padded<Mutex<Vec<usize>>>,
    lock: Padded<AtomicBool>,
}

// SAFETY: forwards to `UserArena`, which upholds the contract; pages in
// the pool stay mapped (they are never handed to the arena's `free_page`).
unsafe impl UserMemory for BenchHost {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        self.arena.translate(addr, len)
    }
}

impl UserPageAlloc for BenchHost {
    fn alloc_user_page(&self) -> Option<usize> {
        let recycled = self.pool.0.lock().unwrap().pop();
        match recycled {
            Some(page) => {
                // The contract: a zeroed page.
                for w in self.arena.user_slice::<AtomicU64>(page, PAGE_SIZE / 8)? {
                    w.store(0, Ordering::Relaxed);
                }
                Some(page)
            }
            None => self.arena.alloc_page(),
        }
    }

    fn ucq_page_budget(&self) -> u64 {
        u64::MAX
    }
}

impl UcqLocks for BenchHost {
    fn with_ucq_lock<R>(&self, _key: usize, f: impl FnOnce() -> R) -> R {
        // A kernel's spin lock (test and test-and-set) that lets a
        // preempted holder run: benchmark threads, unlike a kernel holding
        // the lock, can be preempted.
        let lock = &self.lock.0;
        let mut spins = 0u32;
        while lock.swap(true, Ordering::Acquire) {
            while lock.load(Ordering::Relaxed) {
                spins += 1;
                if spins % 32 == 0 {
                    thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        let r = f();
        lock.store(false, Ordering::Release);
        r
    }
}

/// The kernel as one of its CPUs sees it: the bench numbers its threads as
/// a kernel numbers CPUs (for `UcqStats`' per-CPU counts).
struct OnCpu<'a> {
    host: &'a BenchHost,
    cpu: usize,
}

// SAFETY: forwards to `BenchHost`, which upholds the contract.
unsafe impl UserMemory for OnCpu<'_> {
    fn translate(&self, addr: usize, len: usize) -> Option<NonNull<u8>> {
        self.host.translate(addr, len)
    }
}

impl UserPageAlloc for OnCpu<'_> {
    fn alloc_user_page(&self) -> Option<usize> {
        self.host.alloc_user_page()
    }

    fn ucq_page_budget(&self) -> u64 {
        self.host.ucq_page_budget()
    }
}

impl UcqLocks for OnCpu<'_> {
    fn with_ucq_lock<R>(&self, key: usize, f: impl FnOnce() -> R) -> R {
        self.host.with_ucq_lock(key, f)
    }

    fn cpu_index(&self) -> Option<usize> {
        Some(self.cpu)
    }
}

/// The consumer's runtime: pause, and yield every 32nd wait.
struct Waiter<'a> {
    host: &'a BenchHost,
    spins: Cell<u32>,
}

impl ucq::ConsumerHost for Waiter<'_> {
    fn relax(&self) {
        let n = self.spins.get().wrapping_add(1);
        self.spins.set(n);
        if n % 32 == 0 {
            thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }

    fn free_page(&self, page: usize) {
        self.host.pool.0.lock().unwrap().push(page);
    }
}

/// A UCQ; `BATCH`: drained with `try_recv_batch`, else with `try_recv`.
struct UcqQueue<const BATCH: bool> {
    host: BenchHost,
    addr: usize,
    stats: Padded<UcqStats>,
}

struct UcqHandle<'a, const BATCH: bool> {
    q: &'a Ucq,
    cons: ucq::Consumer<'a>,
    kernel: OnCpu<'a>,
    stats: &'a UcqStats,
    waiter: Waiter<'a>,
}

impl<const BATCH: bool> Queue for UcqQueue<BATCH> {
    const NAME: &'static str = if BATCH {
        "ucq batch drain"
    } else {
        "ucq single-claim"
    };
    const OURS: bool = true;
    const BATCHES: bool = BATCH;
    type Handle<'a> = UcqHandle<'a, BATCH>;

    fn new(backlog: usize) -> Self {
        let pages = backlog / NR_MSG_PER_PAGE + 16;
        let arena = UserArena::new(pages * PAGE_SIZE);
        // Touch every page now: first-touch page faults of the host OS are
        // not part of the UCQ (the peers reuse warm heap memory).
        for page in arena.user_range().step_by(PAGE_SIZE) {
            arena.write_u64(page, 0);
        }
        let addr = arena.alloc(size_of::<Ucq>(), 64).unwrap();
        let host = BenchHost {
            arena,
            pool: Padded(Mutex::new(Vec::new())),
            lock: Padded(AtomicBool::new(false)),
        };
        let (a, b) = (
            host.alloc_user_page().unwrap(),
            host.alloc_user_page().unwrap(),
        );
        // SAFETY: two fresh arena pages; the arena outlives the queue.
        unsafe { ucq::init(host.user_ref(addr).unwrap(), a, b) }.unwrap();
        Self {
            host,
            addr,
            stats: Padded(UcqStats::new()),
        }
    }

    fn after(&self) -> String {
        let s = self.stats.0.snapshot();
        format!(
            "switches {} spares {} allocated {} pooled {}",
            s.page_switches,
            s.spares_used,
            s.pages_allocated,
            self.host.pool.0.lock().unwrap().len()
        )
    }

    fn handle(&self, thread: usize) -> UcqHandle<'_, BATCH> {
        let q: &Ucq = self.host.user_ref(self.addr).expect("ucq in arena");
        UcqHandle {
            q,
            kernel: OnCpu {
                host: &self.host,
                cpu: thread,
            },
            // SAFETY: the queue and its pages live in the arena (the
            // simulated process's own memory), which outlives the handle;
            // freed pages go to the pool and stay mapped.
            cons: unsafe { ucq::Consumer::new(q) },
            stats: &self.stats.0,
            waiter: Waiter {
                host: &self.host,
                spins: Cell::new(0),
            },
        }
    }
}

impl<const BATCH: bool> Handle for UcqHandle<'_, BATCH> {
    #[inline]
    fn push(&self, m: EventMsg) {
        if ucq::send(self.q, &m, &self.kernel, self.stats).is_err() {
            panic!("ucq send failed");
        }
    }

    #[inline]
    fn pop_batch(&self, out: &mut [EventMsg]) -> usize {
        if BATCH {
            self.cons.try_recv_batch(&self.waiter, out)
        } else {
            match self.cons.try_recv(&self.waiter) {
                Some(m) => {
                    out[0] = m;
                    1
                }
                None => 0,
            }
        }
    }
}

// ---- the peers ----

impl Queue for ArrayQueue<EventMsg> {
    const NAME: &'static str = "crossbeam ArrayQueue(1024)";
    type Handle<'a> = &'a Self;
    fn new(_: usize) -> Self {
        ArrayQueue::new(1024)
    }
    fn handle(&self, _: usize) -> &Self {
        self
    }
}

impl Handle for &ArrayQueue<EventMsg> {
    #[inline]
    fn push(&self, mut m: EventMsg) {
        // Bounded: a full ring makes the producer wait.
        let mut step = 0;
        while let Err(back) = ArrayQueue::push(self, m) {
            m = back;
            backoff(&mut step);
        }
    }
    #[inline]
    fn pop_batch(&self, out: &mut [EventMsg]) -> usize {
        ArrayQueue::pop(self).map_or(0, |m| {
            out[0] = m;
            1
        })
    }
}

impl Queue for SegQueue<EventMsg> {
    const NAME: &'static str = "crossbeam SegQueue";
    type Handle<'a> = &'a Self;
    fn new(_: usize) -> Self {
        SegQueue::new()
    }
    fn handle(&self, _: usize) -> &Self {
        self
    }
}

impl Handle for &SegQueue<EventMsg> {
    #[inline]
    fn push(&self, m: EventMsg) {
        SegQueue::push(self, m);
    }
    #[inline]
    fn pop_batch(&self, out: &mut [EventMsg]) -> usize {
        SegQueue::pop(self).map_or(0, |m| {
            out[0] = m;
            1
        })
    }
}

impl Queue for ConcurrentQueue<EventMsg> {
    const NAME: &'static str = "concurrent-queue unbounded";
    type Handle<'a> = &'a Self;
    fn new(_: usize) -> Self {
        ConcurrentQueue::unbounded()
    }
    fn handle(&self, _: usize) -> &Self {
        self
    }
}

impl Handle for &ConcurrentQueue<EventMsg> {
    #[inline]
    fn push(&self, m: EventMsg) {
        if ConcurrentQueue::push(self, m).is_err() {
            panic!("unbounded queue refused a push");
        }
    }
    #[inline]
    fn pop_batch(&self, out: &mut [EventMsg]) -> usize {
        ConcurrentQueue::pop(self).map_or(0, |m| {
            out[0] = m;
            1
        })
    }
}

// ---- the cases ----

/// Nanoseconds per send+receive on one thread: send 8, receive 8.
fn single<Q: Queue>(n: usize) -> f64 {
    let q = Q::new(64);
    let h = q.handle(0);
    let mut buf = [EventMsg::default(); 8];
    let start = Instant::now();
    for i in 0..n / 8 {
        for j in 0..8 {
            h.push(EventMsg::new(1).with_arg4((i * 8 + j) as u64));
        }
        let mut got = 0;
        while got < 8 {
            let k = h.pop_batch(&mut buf[..8 - got]);
            black_box(&buf[..k]);
            got += k;
        }
    }
    start.elapsed().as_nanos() as f64 / (n / 8 * 8) as f64
}

/// Nanoseconds per message for `total` messages through `p` producers and
/// `c` consumers (time from releasing the started threads until all are
/// done).
fn mpmc<Q: Queue>(p: usize, c: usize, total: usize) -> f64 {
    let q = Q::new(total);
    let per = total / p;
    let n = per * p;
    let done = Padded(AtomicUsize::new(0));
    let claims = Padded(AtomicUsize::new(0));
    let started = Padded(AtomicUsize::new(0));
    let go = Padded(AtomicBool::new(false));
    let t0 = Padded(std::sync::OnceLock::<Instant>::new());
    let prod_ns = Padded(AtomicUsize::new(0));
    let wait_for_go = || {
        started.0.fetch_add(1, Ordering::AcqRel);
        while !go.0.load(Ordering::Acquire) {
            thread::yield_now();
        }
    };
    thread::scope(|s| {
        let mut threads = Vec::new();
        for id in 0..p {
            let (q, wait_for_go, t0, prod_ns) = (&q, &wait_for_go, &t0, &prod_ns);
            threads.push(s.spawn(move || {
                let h = q.handle(id);
                wait_for_go();
                for i in 0..per {
                    h.push(EventMsg::new(1).with_arg1(id as u16).with_arg4(i as u64));
                }
                let e = t0.0.get().unwrap().elapsed().as_nanos() as usize;
                prod_ns.0.fetch_max(e, Ordering::Relaxed);
            }));
        }
        for id in p..p + c {
            let (q, done, wait_for_go, claims) = (&q, &done, &wait_for_go, &claims);
            threads.push(s.spawn(move || {
                let h = q.handle(id);
                let mut buf = [EventMsg::default(); 16];
                let mut idle = 0;
                let mut nclaims = 0;
                // Messages taken and not yet added to `done`: the shared
                // count is updated every 64 messages and when the queue is
                // drained, so no contender pays a locked add per message.
                let mut pending = 0;
                wait_for_go();
                loop {
                    let k = h.pop_batch(&mut buf);
                    if k > 0 {
                        black_box(&buf[..k]);
                        pending += k;
                        nclaims += 1;
                    }
                    // Drained (an empty pop or a short batch): back off,
                    // the same for every queue (see the top of the file).
                    let drained = k == 0 || (Q::BATCHES && k < buf.len());
                    if pending >= 64 || (drained && pending > 0) {
                        done.0.fetch_add(pending, Ordering::Relaxed);
                        pending = 0;
                    }
                    if !drained {
                        idle = 0;
                    } else if done.0.load(Ordering::Relaxed) >= n {
                        break;
                    } else {
                        backoff(&mut idle);
                    }
                }
                claims.0.fetch_add(nclaims, Ordering::Relaxed);
            }));
        }
        while started.0.load(Ordering::Acquire) < p + c {
            thread::yield_now();
        }
        let start = Instant::now();
        t0.0.set(start).unwrap();
        go.0.store(true, Ordering::Release);
        for t in threads {
            t.join().unwrap();
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        if verbose() {
            println!(
                "      trial {:<28} {ns:7.1}  producers done {:7.1} msgs/claim {:.1} {}",
                Q::NAME,
                prod_ns.0.load(Ordering::Relaxed) as f64 / n as f64,
                n as f64 / claims.0.load(Ordering::Relaxed) as f64,
                q.after()
            );
        }
        ns
    })
}

fn verbose() -> bool {
    std::env::var_os("UCQ_BENCH_VERBOSE").is_some()
}

/// The value at quantile `f` of sorted `v` (linear interpolation).
fn quantile(v: &[f64], f: f64) -> f64 {
    let x = f * (v.len() - 1) as f64;
    let (i, frac) = (x.floor() as usize, x - x.floor());
    v[i] + (v[(i + 1).min(v.len() - 1)] - v[i]) * frac
}

/// What a contender is to the UCQ rows' "vs best peer".
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Ours,
    Peer,
    /// Shown, not compared with.
    Reference,
}

struct Contender<'a> {
    name: &'static str,
    role: Role,
    run: &'a dyn Fn() -> f64,
}

fn contender<Q: Queue>(run: &dyn Fn() -> f64) -> Contender<'_> {
    Contender {
        name: Q::NAME,
        role: if Q::OURS { Role::Ours } else { Role::Peer },
        run,
    }
}

/// Runs the contenders in interleaved trials (rotating the order) and
/// prints each one's median, spread and ratios.
fn compare(case: &str, trials: usize, contenders: &[Contender<'_>]) {
    let k = contenders.len();
    let only = std::env::var("UCQ_BENCH_ONLY").ok();
    let skip = |c: &Contender<'_>| only.as_deref().is_some_and(|o| !c.name.contains(o));
    let mut results = vec![vec![]; k];
    for t in 0..trials {
        for i in 0..k {
            let j = (i + t) % k;
            if !skip(&contenders[j]) {
                results[j].push((contenders[j].run)());
            }
        }
    }
    // (median, p10, p90); NaN for a contender left out.
    let stats: Vec<(f64, f64, f64)> = results
        .into_iter()
        .map(|mut v| {
            if v.is_empty() {
                return (f64::NAN, f64::NAN, f64::NAN);
            }
            v.sort_by(f64::total_cmp);
            (quantile(&v, 0.5), quantile(&v, 0.1), quantile(&v, 0.9))
        })
        .collect();
    let base = stats[0].0;
    let best_peer = contenders
        .iter()
        .zip(&stats)
        .filter(|(c, s)| c.role == Role::Peer && !s.0.is_nan())
        .map(|(_, s)| s.0)
        .fold(f64::INFINITY, f64::min);
    let vs = |c: &Contender<'_>, med: f64| match c.role {
        Role::Ours if best_peer.is_finite() => format!("{:.2}", best_peer / med),
        _ => "-".to_owned(),
    };
    println!("{case}");
    println!(
        "    {:<34} {:>8} {:>13} {:>7} {:>7}",
        "", "ns/msg", "p10-p90", "x base", "vs peer"
    );
    let name = |c: &Contender<'_>| match c.role {
        Role::Reference => format!("{} (ref)", c.name),
        _ => c.name.to_owned(),
    };
    for (c, &(med, lo, hi)) in contenders.iter().zip(&stats) {
        if med.is_nan() {
            continue;
        }
        let name = name(c);
        println!(
            "    {name:<34} {med:8.1} {:>13} {:7.2} {:>7}",
            format!("{lo:.1}-{hi:.1}"),
            med / base,
            vs(c, med)
        );
    }
    for (c, &(med, lo, hi)) in contenders.iter().zip(&stats) {
        if med.is_nan() {
            continue;
        }
        println!(
            "BENCH\tucq\t{case} / {}\t{med:.1}\tns/msg\t{:.2}\t{}\tp10-p90 {lo:.1}-{hi:.1}",
            name(c),
            med / base,
            vs(c, med)
        );
    }
}

type Single = UcqQueue<false>;
type Batch = UcqQueue<true>;
type Ring = ArrayQueue<EventMsg>;
type Seg = SegQueue<EventMsg>;
type Cq = ConcurrentQueue<EventMsg>;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (mut trials, total) = if quick { (9, 200_000) } else { (41, 1_000_000) };
    if let Some(t) = std::env::var("UCQ_BENCH_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        trials = t;
    }
    let only = std::env::var("UCQ_BENCH_CASE").ok();
    let run = |case: &str| only.as_deref().is_none_or(|o| case.contains(o));
    println!(
        "UCQ vs peers: {trials} interleaved trials per case; median ns/msg with p10-p90 over trials; x base = time / ucq single-claim's;"
    );
    println!(
        "vs peer = best peer's time / ours (> 1: the UCQ is faster); threaded cases: {total} messages, single thread: {}",
        total * 2
    );
    println!(
        "machine: {} CPUs",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    let n1 = total * 2;
    if run("single thread") {
        compare(
            "single thread",
            trials,
            &[
                contender::<Single>(&|| single::<Single>(n1)),
                contender::<Batch>(&|| single::<Batch>(n1)),
                contender::<Ring>(&|| single::<Ring>(n1)),
                contender::<Seg>(&|| single::<Seg>(n1)),
                contender::<Cq>(&|| single::<Cq>(n1)),
            ],
        );
    }
    for (p, c) in [(1, 1), (2, 2), (4, 1)] {
        let case = format!("{p}P/{c}C");
        if !run(&case) {
            continue;
        }
        compare(
            &case,
            trials,
            &[
                contender::<Single>(&|| mpmc::<Single>(p, c, total)),
                contender::<Batch>(&|| mpmc::<Batch>(p, c, total)),
                Contender {
                    role: Role::Reference,
                    ..contender::<Ring>(&|| mpmc::<Ring>(p, c, total))
                },
                contender::<Seg>(&|| mpmc::<Seg>(p, c, total)),
                contender::<Cq>(&|| mpmc::<Cq>(p, c, total)),
            ],
        );
    }
}
