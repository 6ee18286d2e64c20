//! Integration tests of the vcpd-events crates.
//!
//! The test files under `tests/` exercise the crates together; shared test
//! machinery (the simulated multicore kernel, QEMU runners) lives in this
//! library so every test file can use it.
