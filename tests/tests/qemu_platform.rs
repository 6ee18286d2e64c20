//! Boots demo-kernel the way a PC would, and on more and fewer CPUs:
//!
//! - a GRUB ISO (`scripts/demo.sh --iso`) from a CD-ROM under QEMU's
//!   default SeaBIOS, with a VGA card: no `-kernel`, no qboot;
//! - `-smp 2`: one application processor, so the app has one vcore;
//! - `-smp 8` with a topology whose APIC ids have holes (two sockets of
//!   five cores: ids 0-4 and 8-10) and two hot-pluggable CPUs the MADT
//!   lists as not enabled.
//!
//! Each must pass every platform check and all nine scenarios. Needs QEMU
//! (and GRUB's tools for the ISO): the tests fail, not skip, without them.

use std::time::Duration;

use vcpd_tests::qemu::{self, Boot};

/// The longest one TCG boot may take (SeaBIOS and GRUB add a few seconds).
const BUDGET: Duration = Duration::from_secs(120);

#[test]
fn grub_iso_boots_from_cdrom_under_seabios_and_passes_every_scenario() {
    qemu::require_grub();
    let iso = qemu::workspace_root()
        .join("target")
        .join("kernel")
        .join("demo-kernel-test.iso");
    let iso = iso.to_str().expect("a UTF-8 path");
    let boot = qemu::boot(&["--iso", "--iso-out", iso, "--smp", "4"], BUDGET);
    let cmd = boot.qemu_command();
    assert!(
        cmd.contains(&format!("-cdrom {iso}")),
        "not booted from the ISO: {cmd}"
    );
    let words: Vec<&str> = cmd.split_whitespace().collect();
    for shortcut in ["-kernel", "-bios", "-append"] {
        assert!(
            !words.contains(&shortcut),
            "{shortcut} in the command: {cmd}"
        );
    }
    assert!(!cmd.contains("qboot"), "qboot in the command: {cmd}");
    for line in [
        "demo.sh: built",
        // GRUB ran and handed over (its menu entry, on the serial console).
        "Booting `demo-kernel'",
        // Both consoles: COM1 (which this test reads) and the VGA screen.
        "console: serial COM1 yes, VGA text screen yes",
        "smp: ACPI MADT (RSDP at 0x",
        "lists 4 enabled CPUs, APIC ids 0 1 2 3",
        "smp check: all 4 CPUs online",
        "  scenario 8 ipi-latency: PASS (",
    ] {
        boot.assert_contains(line);
    }
    boot.assert_all_passed();
}

#[test]
fn two_cpus_one_vcore_pass_every_scenario() {
    let boot = qemu::boot(&["--cpu", "max", "--smp", "2"], BUDGET);
    for line in [
        "lists 2 enabled CPUs, APIC ids 0 1",
        "smp check: all 2 CPUs online",
        "process app is an MCP with 1 vcores",
        "per vcore [100000]",
        "one vcore (one AP): no running peer",
    ] {
        boot.assert_contains(line);
    }
    boot.assert_all_passed();
}

#[test]
fn eight_cpus_with_apic_id_holes_pass_every_scenario() {
    let boot: Boot = qemu::boot(
        &[
            "--cpu",
            "max",
            "--smp",
            "8,maxcpus=10,sockets=2,cores=5,threads=1",
        ],
        BUDGET,
    );
    for line in [
        "lists 8 enabled CPUs, APIC ids 0 1 2 3 4 8 9 10 (2 more entries not enabled)",
        "smp: QEMU's fw_cfg agrees: 8 CPUs",
        "cpu 5: online, x2APIC id 8",
        "cpu 7: online, x2APIC id 10",
        "smp check: all 8 CPUs online",
        "ipi check: cpu 7 ok",
        "process app is an MCP with 7 vcores",
    ] {
        boot.assert_contains(line);
    }
    boot.assert_all_passed();
}
