#!/usr/bin/env bash
# Checks that every fence, re-check and read-modify-write the event-core
# loom models rely on is needed: each mutation below weakens one, and some
# model must then fail. Runs in a scratch worktree of HEAD (the working
# tree is left alone); prints one line per mutation and exits non-zero if
# any mutation survives. About 15 minutes on two cores.
#
#   scripts/loom-mutations.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scratch=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$scratch/wt" >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
git worktree add --detach "$scratch/wt" HEAD >/dev/null
cd "$scratch/wt"

survivors=0
# mutate NAME FILE TEST OLD NEW: replace the first OLD by NEW in FILE, run the
# loom test file TEST, expect a failure.
mutate() {
    local name=$1 file=$2 test=$3 old=$4 new=$5
    git checkout -q -- .
    python3 - "$file" "$old" "$new" <<'PY'
import sys
f, old, new = sys.argv[1:]
s = open(f).read()
if old not in s:
    sys.exit(f"mutation anchor not found in {f}: {old!r}")
open(f, "w").write(s.replace(old, new, 1))
PY
    local out
    if out=$(RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 \
        cargo test --release --target-dir "$root/target/loom-mutants" -p event-core --test "$test" 2>&1); then
        echo "SURVIVED  $name"
        survivors=$((survivors + 1))
    else
        local failed
        failed=$(printf '%s\n' "$out" | sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' | tr '\n' ' ')
        if [ -z "$failed" ]; then
            echo "ERROR     $name (did not build?)"; printf '%s\n' "$out" | tail -5
            survivors=$((survivors + 1))
        else
            echo "caught    $name -> $failed"
        fi
    fi
}

S=event-core/src/vcores/set.rs
SP=event-core/src/spam.rs
SE=event-core/src/send.rs
R=event-core/src/recv/mod.rs

mutate "yield: no fence before the re-check" $S loom \
"            fence(Ordering::SeqCst);
            if pending() {" \
"            if pending() {"
mutate "yield: no re-check after unlinking" $S loom \
"            fence(Ordering::SeqCst);
            if pending() {" \
"            fence(Ordering::SeqCst);
            if false && pending() {"
mutate "yield: WAITING only after the re-check" $S loom \
"            if waiting {
                self.set_state(ProcState::Waiting);
            }" ""
mutate "yield: the yielder goes to the inactive tail" $S loom \
"let _ = l.inactive.insert(0, v);" "let _ = l.inactive.push(v);"
mutate "spam_list_member: no fence" $SP loom \
"        fence(Ordering::SeqCst);
        let first = head(p, list);" \
"        let first = head(p, list);"
mutate "spam_list_member: no head re-check" $SP loom \
"        if first == Some(v) {" "        if true {"
mutate "MUST_RUN: no fence" $SP loom \
"            fence(Ordering::SeqCst);
            if is_mapped(p, v) {" \
"            if is_mapped(p, v) {"
mutate "WAKEUP: no fence before reading WAITING" $SE loom \
"    fence(Ordering::SeqCst);
    let vcores = p.events().vcores();" \
"    let vcores = p.events().vcores();"
mutate "INDIR: no fence before reading ev_alert_pending" $SE loom \
"        fence(Ordering::SeqCst);
        send_indir(" \
"        send_indir("
mutate "notif_pending set by a store, not a swap" $SE loom \
"    vcpd.notif_pending.swap(true, Ordering::AcqRel);
    result" \
"    vcpd.notif_pending.store(true, Ordering::Release);
    result"
mutate "handle_events: notif_pending cleared by a store, not a swap" $R loom \
"vcpd.notif_pending.swap(false, Ordering::AcqRel);" \
"vcpd.notif_pending.store(false, Ordering::Release);"
mutate "indirection handler: no fence after clearing ev_alert_pending" $R loom \
"    fence(Ordering::SeqCst);
    rx.handle_event_q" \
"    rx.handle_event_q"

git checkout -q -- .
if [ "$survivors" -ne 0 ]; then
    echo "loom-mutations: $survivors mutation(s) survived" >&2
    exit 1
fi
echo "loom-mutations: every mutation was caught"
