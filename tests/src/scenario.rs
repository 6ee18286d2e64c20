//! Running a simulated-kernel scenario: senders on kernel threads, an
//! optional preemption driver, the process's vcores, then quiescing and
//! checking that every message was handled (printing the seed and where
//! the missing ones are if not).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::rng::{self, Rng};
use crate::sim::{Config, Sim};

/// A scenario's shape.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name, for the report line.
    pub name: &'static str,
    /// The simulated process.
    pub cfg: Config,
    /// Messages to send in total (ids `0..messages`).
    pub messages: usize,
    /// Kernel threads sending.
    pub senders: usize,
    /// Bulk-preempt and restart the process at random while sending.
    pub preempt: bool,
    /// A sender yields its thread after every `pace` sends, so vcore
    /// threads (more threads than cores) get to run between sends and
    /// yields, starts and preemptions interleave with them.
    pub pace: usize,
    /// How much racing the scenario must see while it sends.
    pub storm: Storm,
}

/// The least number of yields, bulk preemptions and WAITs a scenario must
/// see while its messages are in flight. Senders hold back (by count, not
/// by the clock) until the storm has kept pace with them: a sender that is
/// a fraction `f` through its messages waits until each count has reached
/// `f` of its minimum. A loaded machine makes the run slower, never weaker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Storm {
    /// Successful yields.
    pub yields: u64,
    /// Vcores bulk-preempted.
    pub preemptions: u64,
    /// Times the process went WAITING.
    pub waits: u64,
}

/// The longest a sender waits for the storm to catch up (a hang guard).
const STORM_PATIENCE: Duration = Duration::from_secs(120);

impl Storm {
    /// Whether the storm has reached `done / total` of its minimums.
    fn kept_pace(&self, sim: &Sim, done: usize, total: usize) -> bool {
        let c = &sim.counters;
        let due = |min: u64| (u128::from(min) * done as u128 / total.max(1) as u128) as u64;
        c.yields.load(Ordering::Relaxed) >= due(self.yields)
            && c.preemptions.load(Ordering::Relaxed) >= due(self.preemptions)
            && c.waits.load(Ordering::Relaxed) >= due(self.waits)
    }

    /// Asserts the minimums (after the run).
    fn check(&self, sim: &Sim, name: &str) {
        let c = &sim.counters;
        for (what, got, min) in [
            ("yields", c.yields.load(Ordering::Relaxed), self.yields),
            (
                "preemptions",
                c.preemptions.load(Ordering::Relaxed),
                self.preemptions,
            ),
            ("waits", c.waits.load(Ordering::Relaxed), self.waits),
        ] {
            assert!(
                got >= min,
                "scenario {name}: only {got} {what} raced the sends (at least {min} needed; \
                 the storm did not keep pace within {STORM_PATIENCE:?})"
            );
        }
    }
}

/// What a sender does for one message id.
pub type SendFn = dyn Fn(&Sim, &mut Rng, usize) + Sync + Send;

/// Sets up queues for a scenario (runs once, before any thread starts).
pub type SetupFn<T> = dyn FnOnce(&Arc<Sim>) -> T;

/// Runs `scenario`: `setup` builds whatever the senders need, `send` sends
/// message `id`. Returns the process for scenario-specific checks. Panics
/// (with the seed) if a message is never handled.
pub fn run<T: Send + Sync + 'static>(
    scenario: &Scenario,
    setup: Box<SetupFn<T>>,
    send: impl Fn(&Sim, &T, &mut Rng, usize) + Sync + Send + 'static,
) -> Arc<Sim> {
    let seed = rng::seed();
    eprintln!("scenario {}: SIM_SEED={seed}", scenario.name);
    let mut rng = Rng::new(seed);
    let sim = Sim::new(scenario.cfg.clone(), scenario.messages);
    let ctx = Arc::new(setup(&sim));
    let vcores = sim.spawn_vcores(&mut rng);
    let start = Instant::now();
    let sending = Arc::new(AtomicBool::new(true));
    let preemptor = scenario.preempt.then(|| {
        let (sim, sending, mut rng) = (sim.clone(), sending.clone(), rng.fork(0xbeef));
        thread::spawn(move || {
            while sending.load(Ordering::Acquire) {
                thread::sleep(Duration::from_micros(rng.below(1500)));
                sim.bulk_preempt();
                thread::sleep(Duration::from_micros(rng.below(600)));
                sim.restart();
            }
        })
    });
    let send = Arc::new(send);
    let per = scenario.messages / scenario.senders;
    let pace = scenario.pace.max(1);
    let senders: Vec<_> = (0..scenario.senders)
        .map(|s| {
            let (sim, ctx, send, mut rng) =
                (sim.clone(), ctx.clone(), send.clone(), rng.fork(s as u64));
            let ids = s * per..if s + 1 == scenario.senders {
                scenario.messages
            } else {
                (s + 1) * per
            };
            let storm = scenario.storm;
            thread::spawn(move || {
                let total = ids.len();
                let patience = Instant::now() + STORM_PATIENCE;
                for (n, id) in ids.enumerate() {
                    while !storm.kept_pace(&sim, n, total) && Instant::now() < patience {
                        thread::sleep(Duration::from_micros(50));
                    }
                    send(&sim, &ctx, &mut rng, id);
                    if (n + 1) % pace == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.join()
            .expect("a sender panicked (send_event must never panic)");
    }
    sending.store(false, Ordering::Release);
    if let Some(p) = preemptor {
        p.join().unwrap();
    }
    let sent_in = start.elapsed();
    scenario.storm.check(&sim, scenario.name);
    let settled = sim.settle(Duration::from_secs(60));
    if !settled {
        let report = diagnose(&sim);
        sim.stop_vcores(vcores);
        panic!(
            "scenario {} (SIM_SEED={seed}): messages lost\n{report}",
            scenario.name
        );
    }
    sim.stop_vcores(vcores);
    let t = &sim.tracker;
    let c = &sim.counters;
    eprintln!(
        "scenario {}: {} messages in {:?} (+{:?} to settle); handled {} copies, {} indirs; yields {} (refused {}), waits {}, starts {}, preemptions {}, ipis {}\n{}",
        scenario.name,
        scenario.messages,
        sent_in,
        start.elapsed() - sent_in,
        t.handled_total.load(Ordering::Relaxed),
        t.indirs_handled.load(Ordering::Relaxed),
        c.yields.load(Ordering::Relaxed),
        c.refused_yields.load(Ordering::Relaxed),
        c.waits.load(Ordering::Relaxed),
        c.starts.load(Ordering::Relaxed),
        c.preemptions.load(Ordering::Relaxed),
        c.ipis.load(Ordering::Relaxed),
        sim.stats()
    );
    assert_eq!(
        t.duplicate_payloads.load(Ordering::Relaxed),
        0,
        "SIM_SEED={seed}: a UCQ payload was delivered twice"
    );
    assert!(
        sim.arena.guards_intact(),
        "SIM_SEED={seed}: something wrote outside the process"
    );
    sim
}

/// Where the unhandled messages are: every vcore's state and what its
/// mailboxes hold (drained destructively: the run is over).
fn diagnose(sim: &Sim) -> String {
    let (expected, got) = sim.tracker.progress();
    let mut out = format!(
        "{got}/{expected} handled; missing (first 10): {:?}\n{sim:?}, waiting {}\n",
        sim.tracker.missing(10),
        sim.is_waiting()
    );
    let rx = sim.receiver();
    for v in 0..sim.cfg.vcores {
        let vcpd = sim.vcpd(v);
        let ids: Vec<u64> = std::iter::from_fn(|| rx.extract_one(&vcpd.ev_mbox_public))
            .map(|m| m.ev_arg4)
            .take(20)
            .collect();
        out += &format!(
            "vcore {v}: mapped {} flags {:?} notif_pending {} public mailbox ids {ids:?}\n",
            sim.is_mapped(v),
            vcpd.flags(Ordering::Relaxed),
            vcpd.notif_pending.load(Ordering::Relaxed)
        );
    }
    out + &format!("{}", sim.stats())
}
