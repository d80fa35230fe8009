#!/usr/bin/env bash
# Install the named Debian packages that are missing (one `apt-get update`, only when needed).
#
#   images/local/apt-install.sh docker.io debootstrap
#
# Needs root and apt-get; with every package present it does nothing (and needs neither).
set -euo pipefail

missing=()
for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-install.sh: missing ${missing[*]}; installing them needs root and apt-get" >&2
    exit 1
fi
echo "apt-install.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q "${missing[@]}" >/dev/null
