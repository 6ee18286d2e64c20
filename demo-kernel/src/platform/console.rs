//! The console: everything printed goes to COM1 and to the VGA text screen,
//! whichever of the two the machine has.
//!
//! Under QEMU the serial port is the console the scripts read; on a real PC
//! without one, the screen shows the same lines. Every CPU prints through
//! one [`spin::Mutex`], taken with interrupts disabled, so an interrupt
//! handler that prints cannot deadlock against the code it interrupted on
//! the same CPU. [`print!`](crate::print) and [`println!`](crate::println) format straight into the
//! devices, with no buffer.
//!
//! The panic path uses [`panic_writer`], which steals the serial port if
//! the lock stays held (the CPU holding it may be the one that panicked).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use spin::Mutex;
use x86_64::instructions::interrupts;

use crate::platform::serial::Serial;
use crate::platform::vga::Vga;

/// The output devices found by [`init`].
#[derive(Debug)]
struct Console {
    serial: Option<Serial>,
    vga: Option<Vga>,
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(serial) = &mut self.serial {
            write_serial(serial, s);
        }
        if let Some(vga) = &mut self.vga {
            vga.write_str(s);
        }
        Ok(())
    }
}

/// Sends `s` with every `\n` as `\r\n`.
fn write_serial(serial: &mut Serial, s: &str) {
    let mut lines = s.split('\n');
    if let Some(first) = lines.next() {
        serial.send(first.as_bytes());
    }
    for line in lines {
        serial.send(b"\r\n");
        serial.send(line.as_bytes());
    }
}

static CONSOLE: Mutex<Console> = Mutex::new(Console {
    serial: None,
    vga: None,
});
/// Whether COM1 was found (for the panic path's stolen writer).
static HAVE_SERIAL: AtomicBool = AtomicBool::new(false);

/// Finds and programs the output devices. Called once, first thing on the
/// bootstrap processor.
pub fn init() {
    interrupts::without_interrupts(|| {
        let mut console = CONSOLE.lock();
        console.serial = Serial::com1();
        console.vga = Vga::probe();
        HAVE_SERIAL.store(console.serial.is_some(), Ordering::Relaxed);
    });
}

/// Which devices the console writes to, for the boot log.
pub fn devices() -> (bool, bool) {
    interrupts::without_interrupts(|| {
        let console = CONSOLE.lock();
        (console.serial.is_some(), console.vga.is_some())
    })
}

/// Writes formatted text to the console; used by [`print!`] and [`println!`].
#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    interrupts::without_interrupts(|| {
        // A console write cannot fail; there is nobody to report it to.
        let _ = CONSOLE.lock().write_fmt(args);
    });
}

/// A writer for the panic path: the console lock if it comes free soon,
/// otherwise a private handle to the serial port (output may interleave,
/// and the screen misses it, but the message gets out even if this CPU
/// panicked holding the lock).
pub fn panic_writer() -> impl Write {
    enum PanicWriter {
        Locked(spin::MutexGuard<'static, Console>),
        Stolen(Option<Serial>),
    }
    impl Write for PanicWriter {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            match self {
                Self::Locked(console) => console.write_str(s),
                Self::Stolen(Some(serial)) => {
                    write_serial(serial, s);
                    Ok(())
                }
                Self::Stolen(None) => Ok(()),
            }
        }
    }
    for _ in 0..10_000_000 {
        if let Some(guard) = CONSOLE.try_lock() {
            return PanicWriter::Locked(guard);
        }
        core::hint::spin_loop();
    }
    PanicWriter::Stolen(HAVE_SERIAL.load(Ordering::Relaxed).then(Serial::steal))
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::platform::console::_print(format_args!($($arg)*)));
}

/// Prints to the console, with a newline.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::platform::console::_print(format_args!("{}\n", format_args!($($arg)*))));
}
