#!/usr/bin/env bash
# Installs what `scripts/demo.sh --iso` needs to build a bootable GRUB ISO
# (Debian bookworm packages): grub-mkrescue (grub-common), GRUB's BIOS
# modules (grub-pc-bin), xorriso and mtools. Does nothing if they are there.
set -euo pipefail

have_all() {
    command -v grub-mkrescue >/dev/null 2>&1 &&
        [ -f /usr/lib/grub/i386-pc/multiboot.mod ] &&
        command -v xorriso >/dev/null 2>&1 &&
        command -v mformat >/dev/null 2>&1
}

if have_all; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends grub-pc-bin grub-common xorriso mtools >/dev/null
have_all || { echo "install-grub.sh: grub-mkrescue, GRUB's i386-pc modules, xorriso or mtools still missing" >&2; exit 1; }
grub-mkrescue --version | head -n1
