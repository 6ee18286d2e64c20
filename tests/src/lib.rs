//! Integration tests of the vcpd-events crates, and the machinery they share.
//!
//! - [`sim`]: a simulated multicore kernel on std threads that implements
//!   the host traits for real (vcore lists under a process lock, yield
//!   refused while `notif_pending`, bulk preemption and restart, WAITING
//!   and wakeup, SCPs and MCPs, notifications as per-vcore interrupt
//!   flags), used by the `sim_*` scenario tests.
//! - [`rng`]: a small seeded generator, so every scenario prints the seed
//!   that reproduces it (`SIM_SEED=<seed>`).
//!
//! - [`qemu`]: building the demo kernel and booting it through
//!   `scripts/demo.sh`, for the QEMU boot tests (`tests/qemu_*.rs`) and
//!   the KVM test (`tests/kvm_short_mode.rs`).

pub mod qemu;
pub mod rng;
pub mod scenario;
pub mod sim;
