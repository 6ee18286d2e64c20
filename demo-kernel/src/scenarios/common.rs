//! What the scenarios share: the verdict [`Report`], message [`Tally`]s,
//! waiting with a deadline, a PRNG, counter snapshots, and the start and
//! end of a run of the process.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use event_core::recv::{HandlerFn, HandlerId};
use event_core::{EventStats, SpamPath};
use x86_64::instructions::interrupts;

use crate::platform::time;
use crate::process::sched;
use crate::process::{MAX_VCORES, ProcState, Process};
use crate::user::UserRt;
use crate::user::program::{self, ProgramRef};

/// A scenario's verdict in the making: counts for the console, and the
/// first failed check.
#[derive(Debug, Default)]
pub struct Report {
    failure: Option<&'static str>,
    detail: heapless::String<1280>,
}

impl Report {
    /// A passing report with nothing said yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `what` as the failure unless `ok` (the first failure wins).
    pub fn check(&mut self, ok: bool, what: &'static str) {
        if !ok && self.failure.is_none() {
            self.failure = Some(what);
        }
    }

    /// The first failed check, if any.
    pub fn failure(&self) -> Option<&'static str> {
        self.failure
    }

    /// The counts written so far.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Write for Report {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // A report longer than the buffer is cut, not lost.
        for c in s.chars() {
            if self.detail.push(c).is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// Waits until `cond` holds or `ms` milliseconds pass; whether it held.
/// The kernel CPU halts between checks (its 1 kHz tick wakes it), leaving
/// the host's CPU time to the vCPUs doing the work.
pub fn wait_until(ms: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = time::now_ns() + ms * 1_000_000;
    loop {
        if cond() {
            return true;
        }
        if time::now_ns() >= deadline {
            return cond();
        }
        if interrupts::are_enabled() {
            interrupts::enable_and_hlt();
        } else {
            core::hint::spin_loop();
        }
    }
}

/// Paces a sender that should run for a while: a batch per tick, for at
/// least `min_ms` (so the scheduler's chaos has time to strike: under TCG
/// the sends alone take a few milliseconds) and at most `max_ms`.
#[derive(Debug)]
pub struct Pacer {
    start: u64,
    min_ns: u64,
    max_ns: u64,
}

impl Pacer {
    /// Starts the clock.
    pub fn new(min_ms: u64, max_ms: u64) -> Self {
        Self {
            start: time::now_ns(),
            min_ns: min_ms * 1_000_000,
            max_ns: max_ms * 1_000_000,
        }
    }

    /// Waits for the next tick, then says whether to send another batch:
    /// yes until `min_ms` passed and `enough` holds, no after `max_ms`.
    pub fn next(&self, enough: bool) -> bool {
        interrupts::enable_and_hlt();
        let elapsed = time::now_ns() - self.start;
        elapsed < self.max_ns && (elapsed < self.min_ns || !enough)
    }

    /// Milliseconds since the start.
    pub fn elapsed_ms(&self) -> u64 {
        (time::now_ns() - self.start) / 1_000_000
    }
}

/// xorshift64*: a small deterministic PRNG (seeds are printed).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift needs a set bit).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.bits() % n
    }
}

/// Which messages of a stream (tagged `0..N` in `ev_arg4`) were handled,
/// how often, by which vcore, and whether each vcore saw its share in
/// order. Test bookkeeping: the handlers (ring 3) record into it, so the
/// tallies live in the image's `.user_data`, which the cooperative
/// processes map writable; the kernel reads them to judge.
#[derive(Debug)]
pub struct Tally<const W: usize> {
    seen: [AtomicU64; W],
    handled: AtomicU64,
    dups: AtomicU64,
    bogus: AtomicU64,
    out_of_order: AtomicU64,
    per_vcore: [AtomicU64; MAX_VCORES],
    /// Per vcore: the last tag it handled, plus one.
    last: [AtomicU64; MAX_VCORES],
}

impl<const W: usize> Tally<W> {
    /// An empty tally for tags below `64 * W`.
    pub const fn new() -> Self {
        Self {
            seen: [const { AtomicU64::new(0) }; W],
            handled: AtomicU64::new(0),
            dups: AtomicU64::new(0),
            bogus: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            per_vcore: [const { AtomicU64::new(0) }; MAX_VCORES],
            last: [const { AtomicU64::new(0) }; MAX_VCORES],
        }
    }

    /// Forgets everything (no vcore may be recording).
    pub fn reset(&self) {
        for a in self
            .seen
            .iter()
            .chain(&self.per_vcore)
            .chain(&self.last)
            .chain([&self.handled, &self.dups, &self.bogus, &self.out_of_order])
        {
            a.store(0, Ordering::Relaxed);
        }
    }

    /// Records that vcore `v` handled tag `seq`; `true` the first time.
    pub fn record(&self, v: u32, seq: u64) -> bool {
        let v = (v as usize).min(MAX_VCORES - 1);
        self.per_vcore[v].fetch_add(1, Ordering::Relaxed);
        let prev = self.last[v].swap(seq + 1, Ordering::Relaxed);
        if seq < prev {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        let Some(word) = self.seen.get((seq / 64) as usize) else {
            self.bogus.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let bit = 1 << (seq % 64);
        let first = word.fetch_or(bit, Ordering::Relaxed) & bit == 0;
        if !first {
            self.dups.fetch_add(1, Ordering::Relaxed);
        }
        // Release: whoever reads the count sees the bits.
        self.handled.fetch_add(1, Ordering::Release);
        first
    }

    /// Whether tag `seq` was handled.
    pub fn seen(&self, seq: u64) -> bool {
        self.seen
            .get((seq / 64) as usize)
            .is_some_and(|w| w.load(Ordering::Acquire) & (1 << (seq % 64)) != 0)
    }

    /// Messages handled, duplicates included.
    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Acquire)
    }

    /// Distinct tags handled.
    pub fn unique(&self) -> u64 {
        self.handled() - self.dups()
    }

    /// Tags handled more than once.
    pub fn dups(&self) -> u64 {
        self.dups.load(Ordering::Relaxed)
    }

    /// Tags outside the tally (a corrupted message).
    pub fn bogus(&self) -> u64 {
        self.bogus.load(Ordering::Relaxed)
    }

    /// Times a vcore handled a smaller tag after a larger one.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order.load(Ordering::Relaxed)
    }

    /// Tags below `n` never handled.
    pub fn missing(&self, n: u64) -> u64 {
        (0..n).filter(|&s| !self.seen(s)).count() as u64
    }

    /// Messages handled by vcore `v`.
    pub fn by_vcore(&self, v: u32) -> u64 {
        self.per_vcore[v as usize].load(Ordering::Relaxed)
    }
}

impl<const W: usize> Default for Tally<W> {
    fn default() -> Self {
        Self::new()
    }
}

/// Tallies for up to 131072 tagged messages each.
#[unsafe(link_section = ".user_data")]
pub static TALLY_A: Tally<2048> = Tally::new();
/// See [`TALLY_A`].
#[unsafe(link_section = ".user_data")]
pub static TALLY_B: Tally<2048> = Tally::new();
/// See [`TALLY_A`].
#[unsafe(link_section = ".user_data")]
pub static TALLY_C: Tally<2048> = Tally::new();

/// Resets the three tallies.
pub fn reset_tallies() {
    TALLY_A.reset();
    TALLY_B.reset();
    TALLY_C.reset();
}

/// `[a, b, c]`: a count per vcore, for the console.
#[derive(Debug)]
pub struct PerVcore<'a, const W: usize>(pub &'a Tally<W>, pub u32);

impl<const W: usize> fmt::Display for PerVcore<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for v in 0..self.1 {
            if v > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}", self.0.by_vcore(v))?;
        }
        f.write_str("]")
    }
}

/// A copy of the event counters, to report what one scenario did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snap {
    /// `send_event` calls.
    pub sends: u64,
    /// Indirections sent.
    pub indirs: u64,
    /// Indirections throttled.
    pub throttled: u64,
    /// IPIs requested.
    pub ipis: u64,
    /// Wakeups of a WAITING process.
    pub wakeups: u64,
    /// Spammed messages per path (`SpamPath::ALL` order).
    pub spam: [u64; 6],
    /// All drops.
    pub drops: u64,
    /// UCQ page switches.
    pub ucq_pages: u64,
    /// CEQ ring overflows.
    pub ceq_overflows: u64,
}

impl Snap {
    /// The counters of `s` now.
    pub fn take(s: &EventStats) -> Self {
        Self {
            sends: s.sends(),
            indirs: s.indirs_sent(),
            throttled: s.indirs_throttled(),
            ipis: s.ipis(),
            wakeups: s.wakeups(),
            spam: SpamPath::ALL.map(|p| s.spam(p)),
            drops: s.total_drops(),
            ucq_pages: s.ucq.snapshot().page_switches,
            ceq_overflows: s.ceq.snapshot().overflows,
        }
    }

    /// What happened since `before`.
    pub fn since(self, before: Self) -> Self {
        let mut spam = [0; 6];
        for (i, s) in spam.iter_mut().enumerate() {
            *s = self.spam[i] - before.spam[i];
        }
        Self {
            sends: self.sends - before.sends,
            indirs: self.indirs - before.indirs,
            throttled: self.throttled - before.throttled,
            ipis: self.ipis - before.ipis,
            wakeups: self.wakeups - before.wakeups,
            spam,
            drops: self.drops - before.drops,
            ucq_pages: self.ucq_pages - before.ucq_pages,
            ceq_overflows: self.ceq_overflows - before.ceq_overflows,
        }
    }

    /// Spammed messages delivered by `path`.
    pub fn spam(&self, path: SpamPath) -> u64 {
        self.spam[path as usize]
    }
}

/// Counts of the process model, to report what one scenario did.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModelSnap {
    /// Successful yields.
    pub yields: u64,
    /// Refused yields.
    pub refused: u64,
    /// Bulk preemptions.
    pub preemptions: u64,
    /// Restarts after preemption.
    pub restarts: u64,
    /// Vcores started from the inactive list.
    pub starts: u64,
    /// Wakeups.
    pub wakeups: u64,
    /// Transitions into WAITING.
    pub waits: u64,
    /// Messages recovered from preempted vcores' mailboxes.
    pub recovered: u64,
}

impl ModelSnap {
    /// The counters of `p` now.
    pub fn take(p: &Process) -> Self {
        let c = &p.counters;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Self {
            yields: r(&c.yields),
            refused: r(&c.yields_refused),
            preemptions: r(&c.preemptions),
            restarts: r(&c.restarts),
            starts: r(&c.starts),
            wakeups: r(&c.wakeups),
            waits: r(&c.waits),
            recovered: p.recovered(),
        }
    }

    /// What happened since `b`.
    pub fn since(self, b: Self) -> Self {
        Self {
            yields: self.yields - b.yields,
            refused: self.refused - b.refused,
            preemptions: self.preemptions - b.preemptions,
            restarts: self.restarts - b.restarts,
            starts: self.starts - b.starts,
            wakeups: self.wakeups - b.wakeups,
            waits: self.waits - b.waits,
            recovered: self.recovered - b.recovered,
        }
    }
}

/// A handler registered for one scenario; dropping it deregisters it
/// (the scenarios drop theirs after the vcores have yielded).
#[derive(Debug)]
pub struct Registration {
    p: &'static Process,
    id: Option<HandlerId>,
}

impl Registration {
    /// Whether the registration succeeded.
    pub fn ok(&self) -> bool {
        self.id.is_some()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.p.handlers().deregister(id);
        }
    }
}

/// Registers `func` (with `data`) for `ev_type` in `p`'s handler table
/// (as the process's main thread would; its vcores call it in ring 3).
#[must_use = "dropping the registration deregisters the handler"]
pub fn register(
    p: &'static Process,
    ev_type: u16,
    func: HandlerFn<UserRt>,
    data: usize,
) -> Registration {
    Registration {
        p,
        id: p.handlers().register(ev_type, func, data).ok(),
    }
}

/// Starts a run of `p`: installs `program` and gives it a core per vcore.
pub fn begin(p: &Process, program: ProgramRef) {
    p.set_program(program);
    p.set_finish(false);
    p.grant(MAX_VCORES);
}

/// Ends a run of `p`: no more chaos, every preempted vcore restarted, and
/// every vcore told to yield; waits until the process is WAITING with no
/// core (a check of the report).
pub fn end(p: &Process, r: &mut Report) {
    sched::clear_chaos();
    p.restart_due(0, true);
    p.set_finish(true);
    let quiet = wait_until(5_000, || {
        p.state() == ProcState::Waiting && sched::cores_of(p.id()) == 0
    });
    r.check(quiet, "the vcores did not all yield at the end");
    p.set_program(&program::IDLE);
    p.set_finish(false);
}
