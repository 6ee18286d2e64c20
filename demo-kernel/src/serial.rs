//! The serial console: COM1, a 16550 UART, polled.
//!
//! Every CPU prints through one [`spin::Mutex`]. The lock is taken with
//! interrupts disabled, so an interrupt handler that prints cannot deadlock
//! against the code it interrupted on the same CPU. [`print!`] and
//! [`println!`] format straight into the UART, with no buffer.
//!
//! The panic path uses [`panic_writer`], which steals the port if its lock
//! stays held (the CPU holding it may be the one that panicked).

use core::fmt::{self, Write};

use spin::Mutex;
use x86_64::instructions::interrupts;
use x86_64::instructions::port::{Port, PortReadOnly, PortWriteOnly};

/// I/O base of COM1.
const COM1: u16 = 0x3f8;

/// A polled 16550 UART.
#[derive(Debug)]
pub struct SerialPort {
    data: Port<u8>,
    int_enable: PortWriteOnly<u8>,
    fifo_ctrl: PortWriteOnly<u8>,
    line_ctrl: PortWriteOnly<u8>,
    modem_ctrl: PortWriteOnly<u8>,
    line_status: PortReadOnly<u8>,
}

impl SerialPort {
    /// The UART at I/O base `base`; does not touch the hardware.
    const fn new(base: u16) -> Self {
        Self {
            data: Port::new(base),
            int_enable: PortWriteOnly::new(base + 1),
            fifo_ctrl: PortWriteOnly::new(base + 2),
            line_ctrl: PortWriteOnly::new(base + 3),
            modem_ctrl: PortWriteOnly::new(base + 4),
            line_status: PortReadOnly::new(base + 5),
        }
    }

    /// 115200 baud, 8N1, FIFOs on, UART interrupts off (we poll).
    fn init(&mut self) {
        // SAFETY: COM1's registers are I/O ports owned by this driver; the
        // sequence is the standard 16550 programming sequence and has no
        // effect on memory.
        unsafe {
            self.int_enable.write(0x00);
            self.line_ctrl.write(0x80); // DLAB: the next two writes are the divisor
            self.data.write(0x01); // divisor low: 115200 / 1
            self.int_enable.write(0x00); // divisor high
            self.line_ctrl.write(0x03); // 8 bits, no parity, one stop bit
            self.fifo_ctrl.write(0xc7); // enable and clear FIFOs
            self.modem_ctrl.write(0x03); // DTR | RTS
        }
    }

    fn write_byte(&mut self, byte: u8) {
        // Bounded wait for "transmit holding register empty": a UART that
        // never drains (no device) must not hang the kernel.
        for _ in 0..100_000 {
            // SAFETY: reading the line status register has no side effects.
            if unsafe { self.line_status.read() } & 0x20 != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        // SAFETY: writing the data register transmits one byte.
        unsafe { self.data.write(byte) }
    }
}

impl Write for SerialPort {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
        Ok(())
    }
}

static COM1_PORT: Mutex<SerialPort> = Mutex::new(SerialPort::new(COM1));

/// Programs the UART. Called once, first thing on the bootstrap processor.
pub fn init() {
    interrupts::without_interrupts(|| COM1_PORT.lock().init());
}

/// Writes formatted text to the console; used by [`print!`] and [`println!`].
#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    interrupts::without_interrupts(|| {
        // A console write cannot fail; there is nobody to report it to.
        let _ = COM1_PORT.lock().write_fmt(args);
    });
}

/// A writer for the panic path: the console lock if it comes free soon,
/// otherwise a private handle to the same port (output may interleave, but
/// the panic message gets out even if this CPU panicked holding the lock).
pub fn panic_writer() -> impl Write {
    enum PanicWriter {
        Locked(spin::MutexGuard<'static, SerialPort>),
        Stolen(SerialPort),
    }
    impl Write for PanicWriter {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            match self {
                Self::Locked(port) => port.write_str(s),
                Self::Stolen(port) => port.write_str(s),
            }
        }
    }
    for _ in 0..10_000_000 {
        if let Some(guard) = COM1_PORT.try_lock() {
            return PanicWriter::Locked(guard);
        }
        core::hint::spin_loop();
    }
    PanicWriter::Stolen(SerialPort::new(COM1))
}

/// Prints to the serial console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::serial::_print(format_args!($($arg)*)));
}

/// Prints to the serial console, with a newline.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::serial::_print(format_args!("{}\n", format_args!($($arg)*))));
}
