#!/usr/bin/env bash
# Installs what relay's build and tests need on Debian/Ubuntu: the Debian packages
# (skipping those already installed) and the pinned npm packages of the end-to-end
# tests (test/package.json + package-lock.json, through `npm ci`). Idempotent.
# Without root, it prints the exact command to run and exits 1.
set -euo pipefail

cd "$(dirname "$0")/.."

PACKAGES=(
	build-essential pkg-config
	libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libjwt-dev libjansson-dev libssl-dev openssl
	libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavdevice-dev libavfilter-dev ffmpeg
	libsqlite3-dev libhiredis-dev redis-server redis-tools
	coturn curl wrk hyperfine valgrind clang clang-format libclang-rt-14-dev chromium iproute2
	python3 openssh-server openssh-client
)

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing Debian packages: ${missing[*]}" >&2
		echo "deps: run as root:  $cmd" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Node 20 and npm come with the machine; Debian's nodejs is deliberately not installed.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "deps: node and npm are needed for the end-to-end tests (Node 20 or later)" >&2
	exit 1
fi

# npm ci only when the lockfile changed since the last install.
stamp=test/node_modules/.relay-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s test/package-lock.json "$stamp"; then
	echo "deps: npm ci in test/"
	(cd test && npm ci --no-audit --no-fund --loglevel=error)
	cp test/package-lock.json "$stamp"
fi
