//! The VGA text screen: 80x25 character cells at physical 0xb8000, so a
//! machine without a serial port still shows what the kernel prints.
//!
//! It assumes the text mode the firmware or GRUB (`terminal_output
//! console`) left behind; the kernel does not program the VGA beyond
//! hiding the hardware cursor. [`Vga::probe`] checks that a VGA answers
//! (its CRTC index register at port 0x3d4 reads back, and memory at
//! 0xb8000 holds what is written: under QEMU with `-nodefaults` there is
//! no VGA and the screen is skipped), then clears it.
//!
//! The screen scrolls when full. A copy of every cell is kept in RAM, and a
//! cell of video memory is written only when its character changes: video
//! memory is never read back, and each write to it may be an exit to the
//! hypervisor (or a slow bus cycle on hardware).

use core::ptr;

use x86_64::instructions::port::Port;

/// Physical (= virtual, boot.rs) address of the text buffer.
const BUFFER: usize = 0xb8000;
const WIDTH: usize = 80;
const HEIGHT: usize = 25;
/// The colour CRTC's index and data ports.
const CRTC_INDEX: u16 = 0x3d4;
const CRTC_DATA: u16 = 0x3d5;
/// CRTC register "cursor start"; its bit 5 hides the cursor.
const CURSOR_START: u8 = 0x0a;
const CURSOR_OFF: u8 = 1 << 5;
/// Light grey on black, in a cell's high byte.
const ATTR: u16 = 0x07 << 8;
const BLANK: u16 = ATTR | b' ' as u16;

/// The text screen and the cursor position of the next character.
#[derive(Debug)]
pub struct Vga {
    row: usize,
    col: usize,
    /// What video memory holds, cell by cell.
    cells: [[u16; WIDTH]; HEIGHT],
}

fn cell_ptr(row: usize, col: usize) -> *mut u16 {
    ptr::with_exposed_provenance_mut::<u16>(BUFFER + 2 * (row * WIDTH + col))
}

fn read_cell(row: usize, col: usize) -> u16 {
    // SAFETY: the cell lies inside the 4000-byte text buffer at 0xb8000,
    // which the identity map covers; reading video memory has no side
    // effects (and reads back garbage, not a fault, where there is none).
    unsafe { cell_ptr(row, col).read_volatile() }
}

fn write_cell(row: usize, col: usize, value: u16) {
    // SAFETY: as in `read_cell`; the console lock (console.rs) makes this
    // the only writer of the text buffer.
    unsafe { cell_ptr(row, col).write_volatile(value) }
}

/// Whether a colour VGA's CRTC answers: its index register reads back
/// what was written (a missing device reads as 0xff).
fn crtc_answers() -> bool {
    let mut index = Port::<u8>::new(CRTC_INDEX);
    // SAFETY: port 0x3d4 is the colour CRTC's index register; selecting a
    // register changes nothing until its data port is written, and where
    // no VGA is decoded the accesses go nowhere.
    unsafe {
        let saved = index.read();
        let answers = [0x0e, 0x0f].iter().all(|&i| {
            index.write(i);
            index.read() == i
        });
        index.write(saved);
        answers
    }
}

/// Hides the blinking hardware cursor (it would sit wherever the firmware
/// left it: this console does not move it).
fn hide_cursor() {
    let mut index = Port::<u8>::new(CRTC_INDEX);
    let mut data = Port::<u8>::new(CRTC_DATA);
    // SAFETY: a VGA answered at these ports (`crtc_answers`); setting the
    // cursor-disable bit of "cursor start" only affects the display.
    unsafe {
        index.write(CURSOR_START);
        let start = data.read();
        data.write(start | CURSOR_OFF);
    }
}

impl Vga {
    /// The screen, cleared, if a VGA answers.
    pub fn probe() -> Option<Self> {
        if !crtc_answers() {
            return None;
        }
        let saved = read_cell(0, 0);
        let answers = [0x1e41u16, 0x2c5a].iter().all(|&pattern| {
            write_cell(0, 0, pattern);
            read_cell(0, 0) == pattern
        });
        write_cell(0, 0, saved);
        if !answers {
            return None;
        }
        let mut vga = Self {
            row: 0,
            col: 0,
            // Not a value any cell is set to: the first clear writes all.
            cells: [[0; WIDTH]; HEIGHT],
        };
        for row in 0..HEIGHT {
            vga.clear_row(row);
        }
        hide_cursor();
        Some(vga)
    }

    fn set(&mut self, row: usize, col: usize, value: u16) {
        if self.cells[row][col] != value {
            self.cells[row][col] = value;
            write_cell(row, col, value);
        }
    }

    fn clear_row(&mut self, row: usize) {
        for col in 0..WIDTH {
            self.set(row, col, BLANK);
        }
    }

    fn newline(&mut self) {
        self.col = 0;
        if self.row + 1 < HEIGHT {
            self.row += 1;
            return;
        }
        for row in 1..HEIGHT {
            for col in 0..WIDTH {
                let below = self.cells[row][col];
                self.set(row - 1, col, below);
            }
        }
        self.clear_row(HEIGHT - 1);
    }

    /// Writes `s`; lines longer than the screen wrap. Bytes outside
    /// printable ASCII show as a block.
    pub fn write_str(&mut self, s: &str) {
        for byte in s.bytes() {
            match byte {
                b'\n' => self.newline(),
                b'\r' => self.col = 0,
                _ => {
                    if self.col == WIDTH {
                        self.newline();
                    }
                    let glyph = if (0x20..0x7f).contains(&byte) {
                        byte
                    } else {
                        0xfe
                    };
                    self.set(self.row, self.col, ATTR | u16::from(glyph));
                    self.col += 1;
                }
            }
        }
    }
}
