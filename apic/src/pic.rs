//! Shutting the legacy 8259 PIC pair up.
//!
//! The firmware leaves the two 8259s delivering IRQ 0–15 on vectors
//! 0x08–0x0F and 0x70–0x77, i.e. on top of CPU exceptions, and wired to LINT0
//! in virtual-wire mode. An x2APIC kernel does not use them, but masking is
//! not enough on its own: a masked 8259 can still raise a *spurious* IRQ 7
//! or 15, which then lands on the programmed base vector + 7. So they are
//! first re-initialised with their bases at 0x20 (master) and 0x28 (slave),
//! where a stray vector is a harmless, recognisable interrupt, and then
//! every line is masked.
//!
//! Sequence (8259A datasheet; the same one every PC kernel uses):
//!
//! | port | value | meaning |
//! |------|-------|---------|
//! | 0x20, 0xA0 | 0x11 | ICW1: initialise, edge triggered, cascade, ICW4 follows |
//! | 0x21 / 0xA1 | 0x20 / 0x28 | ICW2: vector base |
//! | 0x21 / 0xA1 | 0x04 / 0x02 | ICW3: slave on master IRQ 2 / slave's cascade ID 2 |
//! | 0x21, 0xA1 | 0x01 | ICW4: 8086 mode, normal EOI |
//! | 0x21, 0xA1 | 0xFF | OCW1: mask all |
//!
//! with a write to port 0x80 (the POST diagnostic port, which nothing
//! decodes) after each ICW as the traditional ~1 µs pause for old
//! controllers.

/// Port-mapped output, so the PIC sequence can be recorded on the host.
pub trait PortIo {
    /// Writes byte `value` to I/O port `port`.
    ///
    /// # Safety
    ///
    /// The write must be permitted (ring 0 or sufficient IOPL) and its
    /// effect on the device behind `port` must be sound.
    unsafe fn outb(&mut self, port: u16, value: u8);
}

/// `out` instructions on the current CPU.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuPorts;

#[cfg(target_arch = "x86_64")]
impl PortIo for CpuPorts {
    #[inline]
    unsafe fn outb(&mut self, port: u16, value: u8) {
        let mut p = x86_64::instructions::port::Port::<u8>::new(port);
        // SAFETY: forwarded to the caller of `PortIo::outb`.
        unsafe { p.write(value) }
    }
}

/// Master 8259 command port.
pub const MASTER_COMMAND: u16 = 0x20;
/// Master 8259 data port.
pub const MASTER_DATA: u16 = 0x21;
/// Slave 8259 command port.
pub const SLAVE_COMMAND: u16 = 0xA0;
/// Slave 8259 data port.
pub const SLAVE_DATA: u16 = 0xA1;
/// The port written for a short I/O delay.
pub const IO_WAIT_PORT: u16 = 0x80;
/// Master vector base after remapping (IRQ 0–7 -> 0x20–0x27).
pub const MASTER_VECTOR_BASE: u8 = 0x20;
/// Slave vector base after remapping (IRQ 8–15 -> 0x28–0x2F).
pub const SLAVE_VECTOR_BASE: u8 = 0x28;

const ICW1_INIT_WITH_ICW4: u8 = 0x11;
const ICW3_MASTER_SLAVE_ON_IRQ2: u8 = 0x04;
const ICW3_SLAVE_CASCADE_ID: u8 = 0x02;
const ICW4_8086: u8 = 0x01;
const OCW1_MASK_ALL: u8 = 0xFF;

/// Remaps both 8259s to 0x20–0x2F and masks every line, through `ports`.
///
/// # Safety
///
/// Ring 0 on a PC-compatible machine (on one without 8259s the writes go
/// nowhere), interrupts disabled, and no other code programming the 8259s
/// concurrently. Call once, before the first `sti`; handlers for vectors
/// 0x27 and 0x2F (spurious IRQ 7/15) are recommended and must not EOI the
/// local APIC.
pub unsafe fn disable_legacy_pic_with<P: PortIo + ?Sized>(ports: &mut P) {
    let steps: [(u16, u8); 8] = [
        (MASTER_COMMAND, ICW1_INIT_WITH_ICW4),
        (SLAVE_COMMAND, ICW1_INIT_WITH_ICW4),
        (MASTER_DATA, MASTER_VECTOR_BASE),
        (SLAVE_DATA, SLAVE_VECTOR_BASE),
        (MASTER_DATA, ICW3_MASTER_SLAVE_ON_IRQ2),
        (SLAVE_DATA, ICW3_SLAVE_CASCADE_ID),
        (MASTER_DATA, ICW4_8086),
        (SLAVE_DATA, ICW4_8086),
    ];
    for (port, value) in steps {
        // SAFETY: the caller guarantees ring 0 and exclusive use of the
        // 8259s; these are the 8259A initialisation words, and port 0x80 is
        // the unused POST port.
        unsafe {
            ports.outb(port, value);
            ports.outb(IO_WAIT_PORT, 0);
        }
    }
    // SAFETY: as above; OCW1 only masks lines.
    unsafe {
        ports.outb(MASTER_DATA, OCW1_MASK_ALL);
        ports.outb(SLAVE_DATA, OCW1_MASK_ALL);
    }
}

/// Remaps both 8259s to 0x20–0x2F and masks every line, with real `out`
/// instructions. The kernel calls this once, on the BSP, before enabling
/// interrupts.
///
/// # Safety
///
/// As [`disable_legacy_pic_with`].
#[cfg(target_arch = "x86_64")]
pub unsafe fn disable_legacy_pic() {
    // SAFETY: `CpuPorts` is the current CPU's I/O space; the caller
    // upholds the rest.
    unsafe { disable_legacy_pic_with(&mut CpuPorts) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockPorts;

    #[test]
    fn remaps_to_0x20_and_masks_everything_in_order() {
        let mut ports = MockPorts::default();
        // SAFETY: the mock touches no hardware.
        unsafe { disable_legacy_pic_with(&mut ports) };
        let w = IO_WAIT_PORT;
        assert_eq!(
            ports.writes,
            [
                (0x20, 0x11),
                (w, 0),
                (0xA0, 0x11),
                (w, 0),
                (0x21, 0x20),
                (w, 0),
                (0xA1, 0x28),
                (w, 0),
                (0x21, 0x04),
                (w, 0),
                (0xA1, 0x02),
                (w, 0),
                (0x21, 0x01),
                (w, 0),
                (0xA1, 0x01),
                (w, 0),
                (0x21, 0xFF),
                (0xA1, 0xFF),
            ]
        );
    }
}
