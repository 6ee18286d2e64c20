//! The `log` backend: every record goes to the console, tagged with
//! the CPU that logged it.
//!
//! The library crates (event-core, ucq, ...) report through `log`, e.g. a
//! warning when a process hands the kernel a bad address; this makes those
//! lines visible. The level comes from the kernel command line
//! (`log=trace|debug|info|warn|error`, default `info`).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// While set, warnings are counted instead of printed (see [`set_quiet`]).
static QUIET: AtomicBool = AtomicBool::new(false);
/// Warnings counted, not printed, while quiet.
static MUTED: AtomicU64 = AtomicU64::new(0);

struct SerialLogger;

impl Log for SerialLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if record.level() >= Level::Warn && QUIET.load(Ordering::Relaxed) {
            MUTED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let cpu = crate::percpu::try_current().map_or(0, |cpu| cpu.index());
        println!(
            "[cpu{cpu} {:5} {}] {}",
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

static LOGGER: SerialLogger = SerialLogger;

/// Installs the logger with the level named by `cmdline` (see module docs).
pub fn init(cmdline: &str) {
    let level = cmdline
        .split(' ')
        .find_map(|w| w.strip_prefix("log="))
        .and_then(|l| l.parse().ok())
        .unwrap_or(LevelFilter::Info);
    // Fails only if a logger is already set, which would be ours.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Counts warnings (and less severe records) instead of printing them while
/// `quiet` is set; errors still print. The hostile-process scenario makes
/// the kernel warn thousands of times, on purpose: this keeps the console
/// readable and the count is the evidence. Returns the records muted since
/// the previous call.
pub fn set_quiet(quiet: bool) -> u64 {
    QUIET.store(quiet, Ordering::Relaxed);
    MUTED.swap(0, Ordering::Relaxed)
}
