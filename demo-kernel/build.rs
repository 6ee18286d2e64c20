//! Link arguments for the kernel binary only.
//!
//! `rustc-link-arg-bins` reaches this crate's `[[bin]]` and nothing else, so
//! library crates built for `x86_64-unknown-none` keep the target defaults.

use std::env;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let script = dir.join("linker.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");

    // Only the bare-metal build is a kernel; `cargo check` for the host (an
    // editor, a stray `--workspace`) must not receive these flags.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    // The linker script places the image at 1 MiB with the Multiboot header
    // first, so QEMU's loader can copy the file flat (the a.out kludge).
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    // The 32-bit entry and the AP trampoline use absolute 32-bit addresses,
    // which a position-independent executable cannot hold: link a fixed image.
    println!("cargo:rustc-link-arg-bins=--no-pie");
    // Keep file offsets and addresses congruent modulo 4 KiB, not 2 MiB, so
    // the file is a contiguous copy of memory from the load address on.
    println!("cargo:rustc-link-arg-bins=-zmax-page-size=0x1000");
}
