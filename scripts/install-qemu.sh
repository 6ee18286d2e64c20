#!/usr/bin/env bash
# Installs QEMU 10 from bookworm-backports when qemu-system-x86_64 is missing
# or too old to emulate x2APIC under TCG (bookworm's own 7.2 lacks it).
set -euo pipefail

need_install() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 || return 0
    local major
    major=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1)
    [ -z "$major" ] || [ "$major" -lt 9 ]
}

if ! need_install; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ ! -f /etc/apt/sources.list.d/bookworm-backports.sources ]; then
    $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq -t bookworm-backports --no-install-recommends qemu-system-x86 >/dev/null
qemu-system-x86_64 --version | head -n1
