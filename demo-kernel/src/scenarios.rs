//! The event-delivery scenarios the demo runs after the platform checks.
//!
//! A scenario is a function that runs on the BSP with every CPU online and
//! returns a [`ScenarioResult`]; it may run code on APs ([`crate::jobs`]),
//! send IPIs ([`crate::lapic::send_ipi`]), allocate user pages
//! ([`crate::user_region`]) and hook the timer tick ([`crate::time`]).
//! Each one lives in its own module and gets a line in [`SCENARIOS`];
//! [`run_all`] runs them in order and prints one verdict line each.

use crate::time;

/// The outcome of one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenarioResult {
    /// It proved what it set out to prove.
    Pass,
    /// It did not; the message says what went wrong.
    Fail(&'static str),
}

/// A scenario: a name for the log and the function that runs it.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Short name, printed in the verdict line.
    pub name: &'static str,
    /// Runs the scenario on the BSP.
    pub run: fn() -> ScenarioResult,
}

/// The scenarios, in the order they run.
pub static SCENARIOS: &[Scenario] = &[];

/// Runs every scenario; the number that failed.
pub fn run_all() -> usize {
    if SCENARIOS.is_empty() {
        println!("scenarios: no event scenarios are registered yet");
        return 0;
    }
    let mut failed = 0;
    for scenario in SCENARIOS {
        println!("scenario {}: running", scenario.name);
        let start = time::now_ns();
        let result = (scenario.run)();
        let ms = (time::now_ns() - start) / 1_000_000;
        match result {
            ScenarioResult::Pass => println!("scenario {}: PASS ({ms} ms)", scenario.name),
            ScenarioResult::Fail(why) => {
                failed += 1;
                println!("scenario {}: FAIL ({ms} ms): {why}", scenario.name);
            }
        }
    }
    failed
}
