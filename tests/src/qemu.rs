//! Booting the demo kernel in QEMU from a test: building it, running
//! `scripts/demo.sh`, and checking what it printed.
//!
//! The kernel is built once per test binary for `x86_64-unknown-none`, in
//! its own target directory (`target/kernel`), so this inner cargo never
//! waits for the lock the outer `cargo test` holds. Boots run one at a
//! time ([`boot`] takes a lock): the scenarios are timed, and two guests
//! with 8 vCPUs each on a 2-core host would starve each other.
//!
//! QEMU is required: without `qemu-system-x86_64` a boot fails (it does
//! not skip), and says how to install it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The nine event scenarios, by number and name, as the kernel prints them.
pub const SCENARIOS: [(u32, &str); 9] = [
    (1, "ucq-storm"),
    (2, "ceq-coalescing"),
    (3, "bitmap"),
    (4, "yield-storm"),
    (5, "preemption"),
    (6, "waiting-wakeup"),
    (7, "hostile-process"),
    (8, "ipi-latency"),
    (9, "wait-any"),
];

/// The workspace root (the parent of `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

/// Panics unless QEMU runs.
pub fn require_qemu() {
    let ok = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        ok,
        "qemu-system-x86_64 is missing: the QEMU boot tests need it. Install QEMU 10 with \
         `scripts/install-qemu.sh` (or run `scripts/demo.sh`, which installs it)."
    );
}

/// Panics unless `grub-mkrescue` and GRUB's BIOS modules are there.
pub fn require_grub() {
    let ok = Command::new("grub-mkrescue")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
        && Path::new("/usr/lib/grub/i386-pc/multiboot.mod").exists();
    assert!(
        ok,
        "grub-mkrescue or GRUB's i386-pc modules are missing: the ISO test needs them. \
         Install them with `scripts/install-grub.sh` (Debian: grub-pc-bin grub-common \
         xorriso mtools)."
    );
}

/// Whether `/dev/kvm` can be opened for reading and writing.
pub fn kvm_usable() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(drop)
        .map_err(|e| format!("/dev/kvm: {e}"))
}

/// Builds the kernel once for all tests of this binary; its path.
pub fn kernel() -> &'static Path {
    static KERNEL: OnceLock<PathBuf> = OnceLock::new();
    KERNEL.get_or_init(|| {
        let root = workspace_root();
        let target_dir = root.join("target").join("kernel");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&root)
            .args([
                "build",
                "-p",
                "demo-kernel",
                "--target",
                "x86_64-unknown-none",
                "--release",
            ])
            .arg("--target-dir")
            .arg(&target_dir)
            .stdin(Stdio::null())
            .status()
            .expect("running cargo to build demo-kernel");
        assert!(status.success(), "building demo-kernel failed ({status})");
        target_dir
            .join("x86_64-unknown-none")
            .join("release")
            .join("demo-kernel")
    })
}

/// A finished boot: demo.sh's exit status, everything it printed, and the
/// wall time of the run.
#[derive(Debug)]
pub struct Boot {
    /// demo.sh's status and output.
    pub output: Output,
    /// stdout then stderr, as text.
    pub text: String,
    /// From starting demo.sh to its exit (the kernel is built already).
    pub elapsed: Duration,
}

impl Boot {
    /// Panics unless the output contains `needle`.
    pub fn assert_contains(&self, needle: &str) {
        assert!(
            self.text.contains(needle),
            "expected {needle:?} in the output:\n{}",
            self.text
        );
    }

    /// Panics if the output contains `needle`.
    pub fn assert_lacks(&self, needle: &str) {
        assert!(
            !self.text.contains(needle),
            "unexpected {needle:?} in the output:\n{}",
            self.text
        );
    }

    /// The verdict line of event scenario `id` (`scenario <id> <name>: ...`,
    /// not the `running` line printed before it).
    pub fn scenario_verdict(&self, id: u32) -> Option<&str> {
        let prefix = format!("scenario {id} ");
        self.text
            .lines()
            .find(|l| l.starts_with(&prefix) && !l.ends_with(": running"))
    }

    /// Panics unless all nine scenarios printed a PASS verdict, the
    /// kernel said so, demo.sh exited 0, and nothing failed or panicked.
    pub fn assert_all_passed(&self) {
        for (id, name) in SCENARIOS {
            let line = self.scenario_verdict(id).unwrap_or_else(|| {
                panic!("scenario {id} ({name}) printed no verdict:\n{}", self.text)
            });
            assert!(
                line.starts_with(&format!("scenario {id} {name}: PASS (")),
                "scenario {id} ({name}) did not pass: {line}\n\nfull output:\n{}",
                self.text
            );
        }
        self.assert_contains("demo-kernel: all checks passed");
        self.assert_contains("demo.sh: PASS");
        for bad in ["PANIC", "EXCEPTION", "FAIL"] {
            self.assert_lacks(bad);
        }
        assert!(
            self.output.status.success(),
            "the demo kernel failed:\n{}",
            self.text
        );
    }

    /// The QEMU command line demo.sh ran (its `demo.sh: qemu-system-x86_64`
    /// line).
    pub fn qemu_command(&self) -> &str {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix("demo.sh: qemu-system-x86_64 "))
            .unwrap_or_else(|| panic!("demo.sh printed no QEMU command line:\n{}", self.text))
    }
}

/// Boots the test binary's kernel with `scripts/demo.sh --kernel <elf>
/// --no-install <args>`, one boot at a time, and panics if it takes longer
/// than `budget` (demo.sh's own `--timeout`, if given, should be larger,
/// so a hang is reported here with the output).
pub fn boot(args: &[&str], budget: Duration) -> Boot {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    require_qemu();
    let kernel = kernel();
    // A boot that panicked (a failed assertion) poisons the lock; the next
    // boot is still fine to run.
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let start = Instant::now();
    let output = Command::new(workspace_root().join("scripts").join("demo.sh"))
        .arg("--kernel")
        .arg(kernel)
        .arg("--no-install")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running scripts/demo.sh");
    let elapsed = start.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // One line; the assertions quote the whole output when they fail.
    eprintln!("demo.sh {args:?}: {} in {elapsed:.2?}", output.status);
    assert!(
        elapsed < budget,
        "boot took {elapsed:.2?}, budget {budget:?}:\n{text}"
    );
    Boot {
        output,
        text,
        elapsed,
    }
}
