//! Boots demo-kernel under KVM in its short mode (`mode=short`: fewer
//! messages per scenario, the same checks) and requires every scenario to
//! pass within [`BUDGET`] (boot to exit, the kernel already built).
//!
//! KVM on the project's machines is nested (the host is itself a virtual
//! machine), where every IPI and timer tick exits to the outer hypervisor:
//! the full demo takes minutes there, the short mode well under a minute.
//!
//! Without a usable `/dev/kvm` the test cannot run. It then says so in a
//! line `cargo test` shows (this binary has no libtest harness, so nothing
//! captures its output) and passes, unless `VCPD_REQUIRE_KVM=1`, which
//! makes it fail instead (for a CI machine that is meant to have KVM).
//! `VCPD_KVM_FULL=1` also boots the full demo under KVM (minutes; its own
//! timeout of 10 minutes).

use std::process::ExitCode;
use std::time::Duration;

use vcpd_tests::qemu;

/// The short mode under KVM must finish within this (boot to exit).
const BUDGET: Duration = Duration::from_secs(60);
/// The full demo under nested KVM (about 80 s measured; generous).
const FULL_BUDGET: Duration = Duration::from_secs(600);

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

fn main() -> ExitCode {
    // Act like a libtest binary where it matters: `--list` names the one
    // test, and a name filter that does not match it skips the boot.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("kvm_short_mode: test");
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty()
        && !filters
            .iter()
            .any(|f| "kvm_short_mode".contains(f.as_str()))
    {
        println!("kvm_short_mode: filtered out");
        return ExitCode::SUCCESS;
    }
    if let Err(why) = qemu::kvm_usable() {
        println!();
        println!("!!! KVM TEST NOT RUN: {why}.");
        println!(
            "!!! The demo kernel's KVM short mode was not booted on this machine; \
             give it a usable /dev/kvm to test the KVM path."
        );
        println!();
        if env_flag("VCPD_REQUIRE_KVM") {
            println!("kvm_short_mode: FAILED (VCPD_REQUIRE_KVM=1 but KVM is not usable)");
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }

    println!("kvm_short_mode: booting the demo kernel under KVM, mode=short ...");
    let boot = qemu::boot(
        &["--kvm", "--append", "mode=short", "--timeout", "300"],
        Duration::from_secs(300),
    );
    boot.assert_contains("scenarios: short mode (mode=short)");
    boot.assert_contains("-accel kvm");
    boot.assert_all_passed();
    assert!(
        boot.elapsed < BUDGET,
        "the KVM short mode took {:.1?}, budget {BUDGET:?}",
        boot.elapsed
    );
    println!(
        "kvm_short_mode: PASS: every scenario passed under KVM in {:.1} s (budget {} s)",
        boot.elapsed.as_secs_f64(),
        BUDGET.as_secs()
    );

    if env_flag("VCPD_KVM_FULL") {
        println!("kvm_short_mode: VCPD_KVM_FULL=1: booting the full demo under KVM ...");
        let full = qemu::boot(
            &["--kvm", "--timeout", "600"],
            FULL_BUDGET + Duration::from_secs(5),
        );
        full.assert_all_passed();
        full.assert_contains("sent 100000, received 100000 exactly once");
        println!(
            "kvm_short_mode: full demo under KVM: PASS in {:.1} s",
            full.elapsed.as_secs_f64()
        );
    }
    ExitCode::SUCCESS
}
