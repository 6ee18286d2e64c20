//! QEMU's firmware configuration interface (fw_cfg), legacy I/O ports.
//!
//! Write a 16-bit item selector to port 0x510, then read the item's bytes
//! one at a time from port 0x511. We use it for one fact: how many CPUs QEMU
//! started (`-smp N`), item 0x05 (`FW_CFG_NB_CPUS`, a little-endian u16).
//! Reference: QEMU's docs/specs/fw_cfg.rst.

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

/// Whether fw_cfg is there (its signature item reads "QEMU").
pub fn present() -> bool {
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
