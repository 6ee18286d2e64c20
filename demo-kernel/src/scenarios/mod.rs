//! The event-delivery scenarios, run after the platform checks.
//!
//! Each scenario runs on the kernel CPU (CPU 0) with every AP in service as
//! a pcore (sched.rs), sets a process's queues up, starts its vcores with a
//! [`VcoreProgram`](crate::user::program::VcoreProgram), sends events, and checks
//! what the vcores' handlers recorded. It prints one line:
//! `scenario N name: PASS (ms): counts` or `... FAIL (ms): why; counts`.
//! Every wait has a deadline, so a hang is a FAIL line, not a stuck run.
//!
//! The processes: [`APP`], the well-behaved MCP most scenarios use (one
//! vcore per AP, living through all of them: between scenarios it is
//! WAITING with every vcore yielded); [`SCP`], a single-core process
//! (scenario 3); [`HOSTILE`], a process that writes garbage everywhere
//! (scenario 7). Each has its own range of the user region.
//!
//! [`Mode::Short`] (kernel command line `mode=short`) makes every scenario
//! send fewer messages and run its timed phases for less time, with the
//! same checks: for hosts where each IPI and timer tick is slow (nested
//! KVM), so a KVM boot fits a test's time budget.

pub mod common;
mod s1_ucq_storm;
mod s2_ceq;
mod s3_bitmap;
mod s4_yield_storm;
mod s5_preemption;
mod s6_wakeup;
mod s7_hostile;
mod s8_ipi_latency;
mod s9_wait;

use core::sync::atomic::{AtomicBool, Ordering};

use common::Report;

use crate::platform::{percpu, time};
use crate::process::sched;
use crate::process::{self, Kind, Spec};

/// Process id of the well-behaved MCP.
pub const APP: usize = 0;
/// Process id of the single-core process.
pub const SCP: usize = 1;
/// Process id of the hostile process.
pub const HOSTILE: usize = 2;
/// Process id of scenario 7's first attacker (one process per attack).
pub const FIRST_ATTACKER: usize = 3;

/// Size of the app's address space (16 MiB).
const APP_PAGES: usize = 4096;

/// How much work the scenarios do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The full message counts and durations.
    Full,
    /// Fewer messages, shorter timed phases, same checks (`mode=short`).
    Short,
}

static SHORT: AtomicBool = AtomicBool::new(false);

/// `full` in [`Mode::Full`], `short` in [`Mode::Short`]: a scenario's
/// message count or duration.
pub fn scaled(full: u64, short: u64) -> u64 {
    if SHORT.load(Ordering::Relaxed) {
        short
    } else {
        full
    }
}

/// A scenario: a number and name for the verdict line, and its body.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Its number in the list.
    pub id: u32,
    /// Short name.
    pub name: &'static str,
    /// Runs it on the kernel CPU, writing counts and failures to the report.
    pub run: fn(&mut Report),
}

/// The scenarios, in the order they run.
pub static SCENARIOS: &[Scenario] = &[
    Scenario {
        id: 1,
        name: "ucq-storm",
        run: s1_ucq_storm::run,
    },
    Scenario {
        id: 2,
        name: "ceq-coalescing",
        run: s2_ceq::run,
    },
    Scenario {
        id: 3,
        name: "bitmap",
        run: s3_bitmap::run,
    },
    Scenario {
        id: 4,
        name: "yield-storm",
        run: s4_yield_storm::run,
    },
    Scenario {
        id: 5,
        name: "preemption",
        run: s5_preemption::run,
    },
    Scenario {
        id: 6,
        name: "waiting-wakeup",
        run: s6_wakeup::run,
    },
    Scenario {
        id: 7,
        name: "hostile-process",
        run: s7_hostile::run,
    },
    Scenario {
        id: 8,
        name: "ipi-latency",
        run: s8_ipi_latency::run,
    },
    Scenario {
        id: 9,
        name: "wait-any",
        run: s9_wait::run,
    },
];

/// The well-behaved MCP (created by [`run_all`]).
pub fn app() -> &'static process::Process {
    process::get(APP)
}

/// Runs every scenario in `mode` and prints the event counters; the
/// number that failed.
pub fn run_all(mode: Mode) -> usize {
    SHORT.store(mode == Mode::Short, Ordering::Relaxed);
    if percpu::online().count() < 2 {
        println!("scenarios: FAIL: vcores run on the APs; boot with -smp 2 or more");
        return SCENARIOS.len();
    }
    let pcores = sched::start();
    let app = process::create(
        APP,
        Spec {
            name: "app",
            kind: Kind::Cooperative,
            mcp: true,
            vcores: pcores as u32,
            pages: APP_PAGES,
            guarded: false,
        },
    );
    println!(
        "scenarios: {pcores} pcores (CPUs 1..={pcores}); process {} is an MCP with {} vcores, \
         user range {:#x}..{:#x}, procdata at {:#x}",
        app.name(),
        app.nr_vcores(),
        app.space().range().start,
        app.space().range().end,
        app.procdata_addr()
    );
    if mode == Mode::Short {
        println!(
            "scenarios: short mode (mode=short): fewer messages, shorter timed phases, same checks"
        );
    }
    let mut failed = 0;
    // (passed, ms) per scenario, for the summary at the end.
    let mut verdicts = heapless::Vec::<(bool, u64), 32>::new();
    for s in SCENARIOS {
        println!("scenario {} {}: running", s.id, s.name);
        let start = time::now_ns();
        let mut report = Report::new();
        (s.run)(&mut report);
        let ms = (time::now_ns() - start) / 1_000_000;
        let _ = verdicts.push((report.failure().is_none(), ms));
        match report.failure() {
            None => println!(
                "scenario {} {}: PASS ({ms} ms): {}",
                s.id,
                s.name,
                report.detail()
            ),
            Some(why) => {
                failed += 1;
                println!(
                    "scenario {} {}: FAIL ({ms} ms): {why}; {}",
                    s.id,
                    s.name,
                    report.detail()
                );
            }
        }
    }
    print_counters();
    // Again in short: the counters scrolled the verdicts off a 25-line
    // screen, which is all a machine without a serial port shows.
    println!("summary:");
    for (s, (passed, ms)) in SCENARIOS.iter().zip(verdicts) {
        let verdict = if passed { "PASS" } else { "FAIL" };
        println!("  scenario {} {}: {verdict} ({ms} ms)", s.id, s.name);
    }
    if !sched::stop() {
        println!("scenarios: FAIL: a pcore did not leave its loop (a vcore still runs)");
        failed += 1;
    }
    failed
}

/// Prints every process's event counters and process-model counters.
fn print_counters() {
    // The attackers of scenario 7 are one-shot processes: their verdicts
    // are in its line.
    for p in process::all().filter(|p| p.id() < FIRST_ATTACKER) {
        let c = &p.counters;
        let r = |a: &core::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        println!(
            "event-core counters of process {} ({}):",
            p.name(),
            if p.is_mcp() { "MCP" } else { "SCP" }
        );
        println!("{}", p.stats());
        println!(
            "process model: starts {} yields {} (refused {}) waits {} wakeups {} \
             preemptions {} restarts {} recovered {} | ring 3: syscalls {} (refused as malformed {}) \
             upcalls {} contexts saved at preemption {} | user pages in use {}",
            r(&c.starts),
            r(&c.yields),
            r(&c.yields_refused),
            r(&c.waits),
            r(&c.wakeups),
            r(&c.preemptions),
            r(&c.restarts),
            p.recovered(),
            r(&c.syscalls),
            r(&c.bad_syscalls),
            r(&c.upcalls),
            r(&c.ctx_saves),
            p.space().used_pages()
        );
    }
}
