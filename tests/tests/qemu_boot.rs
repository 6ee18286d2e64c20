//! Boots demo-kernel in QEMU and checks what it prints.
//!
//! Builds the kernel for `x86_64-unknown-none` (in its own target directory,
//! `target/kernel`, so this inner cargo never waits for the lock the outer
//! `cargo test` holds), then boots it through `scripts/demo.sh` under TCG:
//!
//! - with `-cpu max -smp 4`: every platform check and each of the nine
//!   event scenarios must pass (each prints a `scenario N name: PASS` line),
//!   and the event-core counters must be printed; the vcores must have run
//!   at CPL 3 (scenario 8 reports the CS its vcore entries found), and the
//!   hostile process must have died of a fault in ring 3 (and each
//!   attacker of its own fault) while the other processes' scenarios
//!   passed;
//! - with `-cpu qemu64` (no x2APIC): the run must fail, with the clear
//!   x2APIC message rather than a crash;
//! - with a page fault injected: the exception report must be readable.
//!
//! QEMU is required: without `qemu-system-x86_64` these tests fail (they do
//! not skip), and say how to install it.

use std::time::Duration;

use vcpd_tests::qemu::{self, Boot, SCENARIOS};

/// The longest one boot may take under TCG (demo.sh's own timeout is
/// larger, so a hang is reported by this assertion, with the output).
const BOOT_BUDGET: Duration = Duration::from_secs(90);

/// Boots the kernel with `scripts/demo.sh --kernel <elf> <args>`.
fn boot(args: &[&str]) -> Boot {
    qemu::boot(args, BOOT_BUDGET)
}

#[test]
fn boots_on_four_cpus_and_passes_every_check_and_scenario() {
    let boot = boot(&["--cpu", "max", "--smp", "4"]);
    for line in [
        "frame allocator check: ok",
        "user region check: ok",
        "smp check: all 4 CPUs online",
        "ipi check: cpu 1 ok",
        "ipi check: cpu 2 ok",
        "ipi check: cpu 3 ok",
        "job check: every AP ran a posted job",
        "timer check: cpu 3 measured",
        "demo-kernel: all checks passed",
        "demo.sh: PASS",
    ] {
        boot.assert_contains(line);
    }
    for (id, name) in SCENARIOS {
        let line = boot
            .scenario_verdict(id)
            .unwrap_or_else(|| panic!("scenario {id} ({name}) printed no verdict:\n{}", boot.text));
        assert!(
            line.starts_with(&format!("scenario {id} {name}: PASS (")),
            "scenario {id} ({name}) did not pass: {line}\n\nfull output:\n{}",
            boot.text
        );
    }
    for line in [
        // Scenario 1 must really move 10^5 messages, each exactly once.
        "sent 100000, received 100000 exactly once",
        // The counters of each process, printed after the scenarios.
        "event-core counters of process app (MCP):",
        "event-core counters of process scp (SCP):",
        "event-core counters of process hostile (MCP):",
        "spam: Scp",
        "ucq: page switches",
        "ceq: ring posts",
        "process model: starts",
    ] {
        boot.assert_contains(line);
    }
    // Ring 3: the vcore entry reports the CS it ran with; RPL 3 is CPL 3.
    let s8 = boot.scenario_verdict(8).unwrap_or_default();
    assert!(
        s8.contains("vcore entries ran at CS 0x23 (CPL 3)")
            && s8.contains("send to ring-3 vcore entry"),
        "scenario 8 does not show ring-3 vcore entries: {s8}"
    );
    // The hostile process died of its page fault in ring 3 (and the kernel
    // said so), every attacker of the fault its attack must cause, its
    // malformed system calls were refused; the other scenarios passed
    // (checked above).
    let s7 = boot.scenario_verdict(7).unwrap_or_default();
    for needle in [
        "hostile killed by #PF, user write to",
        "(kernel data; protection violation)",
        "11/11 died of the fault it must cause",
        "faults that killed hostile processes: 11 (#PF 7, #GP 4)",
        "kernel canary intact true, kernel text intact true, app procdata unchanged true",
    ] {
        assert!(s7.contains(needle), "scenario 7 lacks {needle:?}: {s7}");
    }
    let (refused, calls) = s7
        .split(" malformed system calls refused")
        .next()
        .and_then(|head| head.rsplit(", ").next())
        .and_then(|n| n.split_once('/'))
        .expect("scenario 7 reports its malformed system calls");
    assert!(
        refused == calls && calls != "0",
        "malformed system calls not all refused: {refused}/{calls}"
    );
    for line in [
        "process hostile: killed by a fault on vcore",
        "process attacker-int-0x50: killed by a fault on vcore 0",
        "process attacker-bad-calls-exit: exits",
    ] {
        boot.assert_contains(line);
    }
    // Preemption saved ring-3 contexts, which recovery read.
    let s5 = boot.scenario_verdict(5).unwrap_or_default();
    assert!(
        s5.contains("saved contexts (vcore_ctx) read by recovery"),
        "scenario 5: {s5}"
    );
    for bad in ["PANIC", "EXCEPTION", "FAIL"] {
        boot.assert_lacks(bad);
    }
    assert!(
        boot.output.status.success(),
        "the demo kernel failed:\n{}",
        boot.text
    );
}

#[test]
fn cpu_without_x2apic_fails_with_a_clear_message() {
    let boot = boot(&["--cpu", "qemu64", "--smp", "4"]);
    assert!(
        !boot.output.status.success(),
        "booting without x2APIC must fail:\n{}",
        boot.text
    );
    boot.assert_contains("demo-kernel: FATAL: this CPU has no x2APIC");
    boot.assert_contains("demo.sh: FAIL: the kernel reported a failure");
    boot.assert_lacks("all checks passed");
}

#[test]
fn exceptions_are_reported_readably() {
    let boot = boot(&["--cpu", "max", "--smp", "2", "--append", "fault=pagefault"]);
    assert!(
        !boot.output.status.success(),
        "a page fault must fail the run:\n{}",
        boot.text
    );
    boot.assert_contains("EXCEPTION: Page fault (#PF, vector 14) on cpu 0");
    boot.assert_contains("CR2 = 0x4000000000: non-present page on read in kernel mode");
    boot.assert_contains("RIP 0x");
    boot.assert_contains("demo.sh: FAIL: the kernel reported a failure");
}
