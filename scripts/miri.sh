#!/usr/bin/env bash
# Runs the single-threaded tests of the crates with unsafe code under Miri.
# A step of scripts/test.sh (CI); runnable alone. Needs nightly with Miri:
# installed here when missing, and a Miri that cannot be installed fails the
# run loudly. Provenance is permissive because user addresses live in shared
# memory as integers and are turned back into pointers, as a process does.
# Property tests run 4 cases each (PROPTEST_CASES) to keep Miri's time in
# bounds (the whole step takes a few minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "miri.sh: Miri missing; installing nightly with miri and rust-src" >&2
    if ! rustup toolchain install nightly --profile minimal --component miri --component rust-src; then
        echo "miri.sh: FATAL: could not install Miri (rustup toolchain install nightly --component miri)" >&2
        exit 1
    fi
fi
if ! cargo +nightly miri setup >/dev/null; then
    echo "miri.sh: FATAL: cargo miri setup failed" >&2
    exit 1
fi

export MIRIFLAGS="${MIRIFLAGS:--Zmiri-permissive-provenance -Zmiri-disable-isolation}"
export PROPTEST_CASES="${PROPTEST_CASES:-4}"
start=$(date +%s)
run() { cargo +nightly miri test --target-dir target/miri "$@"; }
run -p vcpd-abi
run -p evbitmap --lib --test hostile
run -p ucq --test paths
run -p ceq --test paths
run -p event-core --test send --test recv
echo "miri.sh: Miri took $(($(date +%s) - start)) s" >&2
