#!/usr/bin/env bash
# Optional extra check (not part of scripts/test.sh: it needs nightly):
# runs the single-threaded tests of the crates with unsafe code under Miri.
# Provenance is permissive because user addresses live in shared memory as
# integers and are turned back into pointers, as a process does.
#   rustup +nightly component add miri rust-src   # once
set -euo pipefail
cd "$(dirname "$0")/.."
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-permissive-provenance -Zmiri-disable-isolation}"
run() { cargo +nightly miri test --target-dir target/miri "$@"; }
run -p vcpd-abi
run -p evbitmap --lib --test hostile
run -p ucq --test paths
run -p ceq --test paths
run -p event-core --test send --test recv
