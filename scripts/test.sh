#!/usr/bin/env bash
# Runs every check the project requires, on the host and for bare metal.
# Set-up free: the Rust target comes from rust-toolchain.toml, QEMU from
# scripts/install-qemu.sh when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Library crates: each must build for bare metal as well as for the host.
LIB_CRATES=(vcpd-abi ucq ceq evbitmap event-core apic)
# Crates with loom models (tests/loom.rs), model-checked under cfg(loom).
LOOM_CRATES=(ucq ceq evbitmap event-core)

step() { printf '\n==> %s\n' "$*"; }

step "QEMU (for the demo-kernel boot tests)"
bash scripts/install-qemu.sh

step "rustfmt"
cargo fmt --all --check

step "clippy (host)"
cargo clippy --workspace --exclude demo-kernel --all-targets --locked -- -D warnings

step "clippy (bare metal: demo kernel)"
cargo clippy --locked -p demo-kernel --target x86_64-unknown-none -- -D warnings

step "bare-metal builds (x86_64-unknown-none)"
for c in "${LIB_CRATES[@]}"; do
    cargo build --locked -p "$c" --target x86_64-unknown-none
done

step "tests (host)"
cargo test --workspace --exclude demo-kernel --locked

step "loom models"
loom_args=()
for c in "${LOOM_CRATES[@]}"; do loom_args+=(-p "$c"); done
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 \
    cargo test --locked --release --target-dir target/loom "${loom_args[@]}" --test loom
# Waiting on several queues (event-core's recv::wait).
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 \
    cargo test --locked --release --target-dir target/loom -p event-core --test loom_wait

printf '\nAll checks passed.\n'
