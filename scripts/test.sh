#!/usr/bin/env bash
# Runs every check the project requires, on the host and for bare metal.
# Set-up free: the Rust target comes from rust-toolchain.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

# Library crates: each must build for bare metal as well as for the host.
LIB_CRATES=(vcpd-abi)

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all --check

step "clippy (host)"
cargo clippy --workspace --exclude demo-kernel --all-targets --locked -- -D warnings

step "bare-metal builds (x86_64-unknown-none)"
for c in "${LIB_CRATES[@]}"; do
    cargo build --locked -p "$c" --target x86_64-unknown-none
done

step "tests (host)"
cargo test --workspace --exclude demo-kernel --locked

printf '\nAll checks passed.\n'
