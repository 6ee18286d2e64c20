#!/usr/bin/env bash
# Runs every check the project requires, on the host and for bare metal.
# Set-up free: the Rust target comes from rust-toolchain.toml, QEMU from
# scripts/install-qemu.sh and GRUB's ISO tools from scripts/install-grub.sh
# when they are missing.
#
# The QEMU boot tests (tests/tests/qemu_*.rs, and kvm_*.rs, which boots
# under KVM when /dev/kvm is usable) run in their own step, timed: together
# they must stay under QEMU_BUDGET_S seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# Library crates: each must build for bare metal as well as for the host.
LIB_CRATES=(vcpd-abi ucq ceq evbitmap event-core vcpd-apic)
# Crates with loom models (tests/loom.rs), model-checked under cfg(loom).
LOOM_CRATES=(ucq ceq evbitmap event-core)

# Seconds all QEMU boot tests together may take.
QEMU_BUDGET_S=360

step() { printf '\n==> %s\n' "$*"; }

# vcpd-tests' test targets: the QEMU/KVM boot tests, and the host ones.
qemu_tests=()
host_tests=()
for f in tests/tests/*.rs; do
    name=$(basename "$f" .rs)
    case "$name" in
        qemu_* | kvm_*) qemu_tests+=(--test "$name") ;;
        *) host_tests+=(--test "$name") ;;
    esac
done

step "QEMU and GRUB (for the demo-kernel boot tests)"
bash scripts/install-qemu.sh
bash scripts/install-grub.sh

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
# event-core's halves build on their own too.
for f in kernel process; do
    cargo build --locked -p event-core --target x86_64-unknown-none --no-default-features --features "$f"
done

step "docs (every library crate, warnings are errors)"
lib_args=()
for c in "${LIB_CRATES[@]}"; do lib_args+=(-p "$c"); done
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps "${lib_args[@]}"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps -p event-core --all-features

step "publishable (cargo publish --dry-run, every library crate)"
# The dry run verifies each crate against the others' packaged sources,
# which cargo unpacks under $CARGO_HOME/registry/src/-<hash of the local
# overlay's path>/ and never refreshes: drop earlier runs' copies, or a
# rerun from the same directory would verify against stale sources.
for c in "${LIB_CRATES[@]}"; do
    rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/"$c"-[0-9]*
done
cargo publish --locked --dry-run --allow-dirty "${lib_args[@]}"

step "examples"
cargo run --locked -q -p event-core --example hello_host
cargo run --locked -q -p event-core --example ceq_and_bitmap

step "tests (host; doctests included)"
cargo test --workspace --exclude demo-kernel --exclude vcpd-tests --locked
cargo test --locked -p vcpd-tests --lib "${host_tests[@]}"
cargo test --locked -p vcpd-tests --doc

step "loom models"
loom_args=()
for c in "${LOOM_CRATES[@]}"; do loom_args+=(-p "$c"); done
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 \
    cargo test --locked --release --target-dir target/loom "${loom_args[@]}" --test loom
# Waiting on several queues (event-core's recv::wait).
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 \
    cargo test --locked --release --target-dir target/loom -p event-core --test loom_wait

step "QEMU boot tests (TCG; KVM when /dev/kvm is usable): ${qemu_tests[*]}"
qemu_start=$(date +%s)
cargo test --locked -p vcpd-tests "${qemu_tests[@]}"
qemu_s=$(( $(date +%s) - qemu_start ))
echo "QEMU boot tests: ${qemu_s} s in all (budget ${QEMU_BUDGET_S} s)"
if [ "$qemu_s" -ge "$QEMU_BUDGET_S" ]; then
    echo "FAIL: the QEMU boot tests took ${qemu_s} s, over the ${QEMU_BUDGET_S} s budget" >&2
    exit 1
fi

step "Miri (crates with unsafe code)"
bash scripts/miri.sh

# Last, so it is seen: whether the KVM path was tested.
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    printf '\nKVM: the short-mode KVM boot test ran (see kvm_short_mode above).\n'
else
    printf '\n!!! KVM TEST NOT RUN: /dev/kvm is not usable here, so the KVM path of the demo kernel was not tested.\n'
fi
printf '\nAll checks passed.\n'
