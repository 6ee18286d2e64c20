#!/usr/bin/env bash
# Builds demo-kernel (release) and boots it in QEMU, printing its serial
# console. Exits 0 if and only if the kernel reports success through QEMU's
# isa-debug-exit device (QEMU status 33); anything else (a failed check, an
# exception, a triple fault, a timeout) exits non-zero.
#
#   scripts/demo.sh                 TCG, -cpu max, 4 CPUs, QEMU's -kernel loader
#   scripts/demo.sh --iso           a GRUB ISO instead, booted from CD-ROM by SeaBIOS
#   scripts/demo.sh --iso-only      only build the ISO (to write to a USB stick)
#   scripts/demo.sh --kvm           KVM, -cpu host,-arch-capabilities
#   scripts/demo.sh --kvm --append mode=short   the short mode (fewer messages)
#   scripts/demo.sh --cpu qemu64    a CPU model without x2APIC: must fail clearly
#   scripts/demo.sh --smp 2 --append "log=debug"
#
# QEMU 10 is installed from bookworm-backports (scripts/install-qemu.sh), and
# for --iso GRUB's tools (scripts/install-grub.sh), when they are missing,
# unless --no-install is given.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    cat <<'USAGE'
usage: scripts/demo.sh [options]
  --kvm             use KVM (-accel kvm); default CPU model host,-arch-capabilities
  --cpu MODEL       QEMU CPU model (default: max under TCG)
  --smp N           number of CPUs (default 4)
  --mem SIZE        guest memory (default 256M; the user region needs 64M+)
  --append STR      kernel command line (e.g. "log=debug", "fault=pagefault")
  --kernel PATH     boot this kernel ELF instead of building one
  --iso             build a GRUB ISO of the kernel and boot it with -cdrom
                    under QEMU's default SeaBIOS (no -kernel, no qboot)
  --iso-only        build the ISO, print its path, do not boot
  --iso-out PATH    where the ISO goes (default: next to the kernel ELF)
  --grub-timeout S  seconds GRUB shows its menu (default 0 when booting
                    here, 5 with --iso-only: time to pick the short mode)
  --timeout SECS    give up after SECS seconds (default 120)
  --no-install      fail instead of installing QEMU when it is missing
USAGE
}

accel=tcg
cpu=""
smp=4
mem=256M
append=""
kernel=""
timeout_s=120
install=1
iso=0
iso_only=0
iso_out=""
grub_timeout=""
while [ $# -gt 0 ]; do
    case "$1" in
        --kvm) accel=kvm ;;
        --cpu) cpu="${2:?--cpu needs a model}"; shift ;;
        --smp) smp="${2:?--smp needs a count}"; shift ;;
        --mem) mem="${2:?--mem needs a size}"; shift ;;
        --append) append="${2?--append needs a string}"; shift ;;
        --kernel) kernel="${2:?--kernel needs a path}"; shift ;;
        --timeout) timeout_s="${2:?--timeout needs seconds}"; shift ;;
        --iso) iso=1 ;;
        --iso-only) iso=1; iso_only=1 ;;
        --iso-out) iso_out="${2:?--iso-out needs a path}"; shift ;;
        --grub-timeout) grub_timeout="${2:?--grub-timeout needs seconds}"; shift ;;
        --no-install) install=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "demo.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

if [ -z "$kernel" ]; then
    cargo build -p demo-kernel --target x86_64-unknown-none --release
    kernel="${CARGO_TARGET_DIR:-target}/x86_64-unknown-none/release/demo-kernel"
fi
if [ ! -f "$kernel" ]; then
    echo "demo.sh: no kernel at $kernel" >&2
    exit 2
fi

if [ "$iso" -eq 1 ]; then
    if [ "$install" -eq 1 ]; then
        scripts/install-grub.sh
    elif ! command -v grub-mkrescue >/dev/null 2>&1 || [ ! -d /usr/lib/grub/i386-pc ]; then
        echo "demo.sh: grub-mkrescue or GRUB's i386-pc modules are missing (scripts/install-grub.sh installs them)" >&2
        exit 2
    fi
    iso_out="${iso_out:-$(dirname "$kernel")/demo-kernel.iso}"
    if [ -z "$grub_timeout" ]; then
        if [ "$iso_only" -eq 1 ]; then grub_timeout=5; else grub_timeout=0; fi
    fi
    tree=$(mktemp -d)
    trap 'rm -rf "$tree"' EXIT
    mkdir -p "$tree/boot/grub"
    cp "$kernel" "$tree/boot/kernel.elf"
    # GRUB talks on COM1 (if the machine has one) and the screen; the
    # kernel (Multiboot v1, a.out kludge) gets the --append string as its
    # command line. The second entry is the short mode, for slow
    # (nested-virtualisation) hosts.
    cat >"$tree/boot/grub/grub.cfg" <<CFG
if serial --unit=0 --speed=115200; then
    terminal_input serial console
    terminal_output serial console
fi
set timeout=$grub_timeout
menuentry "demo-kernel" {
    multiboot /boot/kernel.elf $append
}
menuentry "demo-kernel, short mode" {
    multiboot /boot/kernel.elf mode=short $append
}
CFG
    # BIOS GRUB only (-d): the kernel finds ACPI and the screen the BIOS way.
    if ! grub-mkrescue -d /usr/lib/grub/i386-pc -o "$iso_out" "$tree" >"$tree/mkrescue.log" 2>&1; then
        cat "$tree/mkrescue.log" >&2
        echo "demo.sh: grub-mkrescue failed" >&2
        exit 2
    fi
    echo "demo.sh: built $iso_out ($(du -k "$iso_out" | cut -f1) KiB)" >&2
    if [ "$iso_only" -eq 1 ]; then
        echo "$iso_out"
        exit 0
    fi
fi

if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    if [ "$install" -eq 0 ]; then
        echo "demo.sh: qemu-system-x86_64 is not installed (scripts/install-qemu.sh installs QEMU 10)" >&2
        exit 2
    fi
    echo "demo.sh: qemu-system-x86_64 missing; installing QEMU from bookworm-backports" >&2
fi
if [ "$install" -eq 1 ]; then
    scripts/install-qemu.sh
fi

if [ "$accel" = kvm ]; then
    if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
        echo "demo.sh: --kvm needs read/write access to /dev/kvm" >&2
        exit 2
    fi
    # Plain `-cpu host` aborts on MSR 0x10a (IA32_ARCH_CAPABILITIES) on some hosts.
    cpu="${cpu:-host,-arch-capabilities}"
else
    cpu="${cpu:-max}"
fi

args=(
    -accel "$accel" -cpu "$cpu" -smp "$smp" -m "$mem"
    -serial stdio -display none -no-reboot -nodefaults
    -device isa-debug-exit,iobase=0xf4,iosize=0x04
)
if [ "$iso" -eq 1 ]; then
    # As a PC boots it: SeaBIOS (QEMU's default firmware), a CD-ROM, GRUB,
    # and a VGA card whose text screen the kernel writes too.
    args+=(-vga std -cdrom "$iso_out" -boot d)
else
    # qboot boots a Multiboot kernel much faster than SeaBIOS; use it if present.
    if [ -f /usr/share/qemu/qboot.rom ]; then
        args+=(-bios /usr/share/qemu/qboot.rom)
    fi
    args+=(-kernel "$kernel")
    if [ -n "$append" ]; then
        args+=(-append "$append")
    fi
fi

echo "demo.sh: qemu-system-x86_64 ${args[*]}" >&2
start_ns=$(date +%s%N)
set +e
# stdin from /dev/null: QEMU must not grab a terminal it was given.
timeout -k 5 "$timeout_s" qemu-system-x86_64 "${args[@]}" </dev/null
status=$?
set -e
elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
elapsed="$((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000)))"

case "$status" in
    33) echo "demo.sh: PASS (boot to exit ${elapsed}s)" >&2; exit 0 ;;
    35) echo "demo.sh: FAIL: the kernel reported a failure (${elapsed}s)" >&2; exit 1 ;;
    124|137) echo "demo.sh: FAIL: timed out after ${timeout_s}s" >&2; exit 124 ;;
    0) echo "demo.sh: FAIL: QEMU exited without a verdict (triple fault or reset?)" >&2; exit 1 ;;
    *) echo "demo.sh: FAIL: QEMU exited with status $status" >&2; exit 1 ;;
esac
