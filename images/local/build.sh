#!/usr/bin/env bash
# Build the CPU image on this machine, without Docker Hub: `make images-local`.
#
#   1. docker.io and debootstrap (images/local/apt-install.sh) and a running daemon
#      (images/local/dockerd.sh, left running for the container tests);
#   2. a Debian base made by debootstrap (minbase + python3, python3-venv, python3-pip,
#      ca-certificates), cached as a tarball OUTSIDE the checkout, in $CARBON_KFP_CACHE_DIR
#      (default ${XDG_CACHE_HOME:-$HOME/.cache}/carbon-kfp), and `docker import`ed;
#   3. carbon-kfp-base:local: that base plus this host's CA bundle ($CARBON_KFP_CA_BUNDLE, default
#      /etc/ssl/certs/ca-certificates.crt), so pip in the build trusts what the host trusts (a
#      proxy CA on the way to the package index), read fresh on every build, never cached;
#   4. carbon-kfp-cpu:local from images/cpu/Dockerfile with --build-arg BASE_IMAGE=carbon-kfp-base:local
#      and --network host.
#
# The bootstrap takes minutes once; later builds start from the tarball (and Docker's layer cache).
# The GPU image cannot be built here: its CUDA base comes from a registry this machine cannot
# reach. Needs root (debootstrap, and starting dockerd).
set -euo pipefail
cd "$(dirname "$0")/../.."

suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
include=python3,python3-venv,python3-pip,ca-certificates
cache_dir=${CARBON_KFP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/carbon-kfp}
ca_bundle=${CARBON_KFP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
image=${CARBON_KFP_LOCAL_IMAGE:-carbon-kfp-cpu:local}

case "$cache_dir" in
    "$PWD"|"$PWD"/*) echo "build.sh: CARBON_KFP_CACHE_DIR=$cache_dir is inside the checkout; choose a folder outside it" >&2; exit 2 ;;
esac
[ -r "$ca_bundle" ] || { echo "build.sh: CA bundle $ca_bundle is not readable; set CARBON_KFP_CA_BUNDLE" >&2; exit 2; }

images/local/apt-install.sh docker.io debootstrap
images/local/dockerd.sh >/dev/null

arch=$(dpkg --print-architecture)
key=$(printf '%s %s %s minbase %s' "$suite" "$arch" "$include" "$mirror" | sha256sum | cut -c1-12)
tarball="$cache_dir/debian-$suite-minbase-$arch-$key.tar"
raw_base="carbon-kfp-base:$suite-$key"

if ! docker image inspect "$raw_base" >/dev/null 2>&1; then
    if [ ! -s "$tarball" ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "build.sh: no cached base at $tarball, and debootstrap needs root: run as root once" >&2
            exit 1
        fi
        echo "build.sh: bootstrapping Debian $suite ($arch) into $tarball (minutes, once)" >&2
        mkdir -p "$cache_dir"
        root=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
        chmod 0755 "$root"  # it becomes the image's /, which mktemp made private to root
        trap 'rm -rf "$root" "$tarball.part"' EXIT
        debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$root.log" 2>&1 \
            || { tail -n 30 "$root.log" >&2; echo "build.sh: debootstrap failed; log: $root.log" >&2; exit 1; }
        rm -f "$root.log"
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        tar --numeric-owner -C "$root" -cf "$tarball.part" .
        mv "$tarball.part" "$tarball"
        rm -rf "$root"
        trap - EXIT
    fi
    echo "build.sh: importing $tarball as $raw_base" >&2
    docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' "$tarball" "$raw_base" >/dev/null
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$ca_bundle" "$context/ca-certificates.crt"
printf 'FROM %s\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\nENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt\n' \
    "$raw_base" >"$context/Dockerfile"
docker build -q -t carbon-kfp-base:local "$context" >/dev/null

echo "build.sh: building $image" >&2
docker build --network host --build-arg BASE_IMAGE=carbon-kfp-base:local \
    -f images/cpu/Dockerfile -t "$image" .
