//! Leaving QEMU with a status: the `isa-debug-exit` device.
//!
//! QEMU is started with `-device isa-debug-exit,iobase=0xf4,iosize=0x04`.
//! Writing `v` to port 0xf4 ends QEMU with exit status `(v << 1) | 1`, so
//! [`QemuExit::Success`] (0x10) becomes 33 and [`QemuExit::Failure`] (0x11)
//! becomes 35; scripts/demo.sh maps 33 to 0 and anything else to failure.
//! Status 0 or 1 cannot be produced, which is why success is not 0.

use x86_64::instructions::port::PortWriteOnly;

/// I/O port of QEMU's `isa-debug-exit` device.
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// The outcome reported to whoever started QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum QemuExit {
    /// Every check passed: QEMU exits with 33.
    Success = 0x10,
    /// Something failed: QEMU exits with 35.
    Failure = 0x11,
}

/// Ends the run with `code`. Without the exit device (real hardware, another
/// emulator) the CPU halts with interrupts off instead.
pub fn exit_qemu(code: QemuExit) -> ! {
    // SAFETY: port 0xf4 is the isa-debug-exit device, which only ends the
    // emulator; on a machine without it the write goes nowhere.
    unsafe { PortWriteOnly::<u32>::new(DEBUG_EXIT_PORT).write(code as u32) };
    halt_forever()
}

/// Stops this CPU for good: interrupts off, `hlt` in a loop (an NMI or SMI
/// could still wake it, hence the loop).
pub fn halt_forever() -> ! {
    x86_64::instructions::interrupts::disable();
    loop {
        x86_64::instructions::hlt();
    }
}
