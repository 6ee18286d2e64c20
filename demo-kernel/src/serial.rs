//! COM1, the 16550 UART at I/O port 0x3f8, through rust-osdev's
//! `uart_16550` crate: 115200 baud, 8N1, FIFOs on, polled.
//!
//! A real machine may have no serial port: [`Serial::com1`] then returns
//! `None` (the crate's scratch-register check finds no device) and the
//! console uses the VGA text screen alone. Sending is bounded, so a UART
//! that never drains (a stuck device, flow control) cannot hang the
//! kernel: output is dropped instead.

use core::hint;

use uart_16550::backend::PioBackend;
use uart_16550::{BaudRate, Config, Uart16550};

/// I/O base of COM1.
const COM1: u16 = 0x3f8;
/// Polls of "transmitter empty" before a chunk of output is dropped.
const SEND_SPINS: u32 = 100_000;

/// A programmed 16550 UART.
#[derive(Debug)]
pub struct Serial {
    uart: Uart16550<PioBackend>,
}

impl Serial {
    fn handle() -> Uart16550<PioBackend> {
        // SAFETY: ports 0x3f8..=0x3ff are COM1's registers and the console
        // (console.rs) is their only user; creating the handle touches no
        // hardware.
        unsafe { Uart16550::new_port(COM1) }.expect("0x3f8 + 7 registers fits the port space")
    }

    /// COM1 programmed for 115200 8N1, or `None` if no UART answers there.
    pub fn com1() -> Option<Self> {
        let mut uart = Self::handle();
        let config = Config {
            baud_rate: BaudRate::Baud115200,
            ..Config::DEFAULT
        };
        uart.init(config).ok()?;
        Some(Self { uart })
    }

    /// A second handle to COM1, for the panic path when the console lock
    /// is held by a CPU that may never release it. The UART keeps the
    /// configuration [`Self::com1`] gave it.
    pub fn steal() -> Self {
        Self {
            uart: Self::handle(),
        }
    }

    /// Sends `bytes` as they are (the console adds the `\r`s).
    pub fn send(&mut self, mut bytes: &[u8]) {
        let mut spins = 0;
        while !bytes.is_empty() {
            // Up to a FIFO's worth per "transmitter empty": one status read
            // per 16 bytes, which matters where every port access exits to
            // a hypervisor.
            match self.uart.send_bytes(bytes) {
                0 => {
                    spins += 1;
                    if spins > SEND_SPINS {
                        return;
                    }
                    hint::spin_loop();
                }
                n => {
                    spins = 0;
                    bytes = &bytes[n..];
                }
            }
        }
    }
}
