//! QEMU's firmware configuration interface (fw_cfg), legacy I/O ports.
//!
//! Write a 16-bit item selector to port 0x510, then read the item's bytes
//! one at a time from port 0x511. We use it for one fact: how many CPUs QEMU
//! started (`-smp N`), item 0x05 (`FW_CFG_NB_CPUS`, a little-endian u16),
//! as a cross-check of the ACPI MADT (madt.rs), which is where the kernel
//! learns its CPUs. Reference: QEMU's docs/specs/fw_cfg.rst.
//!
//! The ports are touched only when CPUID says a hypervisor runs us: on a
//! real machine 0x510 may belong to some chipset device.

use x86_64::instructions::port::{Port, PortWriteOnly};

const SELECTOR_PORT: u16 = 0x510;
const DATA_PORT: u16 = 0x511;

const FW_CFG_SIGNATURE: u16 = 0x00;
const FW_CFG_NB_CPUS: u16 = 0x05;

/// Reads `buf.len()` bytes of item `key`.
fn read_item(key: u16, buf: &mut [u8]) {
    // SAFETY: the fw_cfg ports only select and read configuration items; on
    // a machine without fw_cfg, reads return 0xff and change nothing.
    unsafe {
        PortWriteOnly::<u16>::new(SELECTOR_PORT).write(key);
        let mut data = Port::<u8>::new(DATA_PORT);
        for byte in buf {
            *byte = data.read();
        }
    }
}

/// Whether a hypervisor announces itself (CPUID.1:ECX bit 31).
fn under_hypervisor() -> bool {
    // SAFETY: CPUID leaf 1 exists on every x86_64 CPU and only reads
    // identification registers. (`__cpuid` is a safe fn on recent Rust,
    // `unsafe` on older ones: the block serves both.)
    #[allow(unused_unsafe)]
    let leaf1 = unsafe { core::arch::x86_64::__cpuid(1) };
    leaf1.ecx & (1 << 31) != 0
}

/// Whether fw_cfg is there: under a hypervisor, its signature item reads
/// "QEMU".
pub fn present() -> bool {
    if !under_hypervisor() {
        return false;
    }
    let mut sig = [0u8; 4];
    read_item(FW_CFG_SIGNATURE, &mut sig);
    &sig == b"QEMU"
}

/// The number of CPUs QEMU started, or `None` without fw_cfg.
pub fn cpu_count() -> Option<usize> {
    if !present() {
        return None;
    }
    let mut n = [0u8; 2];
    read_item(FW_CFG_NB_CPUS, &mut n);
    Some(usize::from(u16::from_le_bytes(n)))
}
