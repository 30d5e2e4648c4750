#!/usr/bin/env bash
# Installs what onnxruntime-node's WebGPU execution provider needs on a GPU-less Debian 12 (bookworm) machine: the
# Vulkan loader and Mesa's software Vulkan driver (lavapipe). Bookworm's Mesa 22 lavapipe is refused by Dawn ("No
# supported adapters"); bookworm-backports' Mesa 25 works, so the backports suite is added on the same mirror host
# that apt already uses. Idempotent: does nothing when a backports Mesa Vulkan driver is installed already.
# Needs root. Other systems: install a Vulkan driver for the GPU (or Mesa >= 24's lavapipe) by their own means.
set -euo pipefail

if ! grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release; then
  echo "install-webgpu.sh: not Debian bookworm; install libvulkan1 and a Vulkan driver yourself" >&2
  exit 0
fi

installed_mesa() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }
if dpkg -s libvulkan1 >/dev/null 2>&1 && [[ "$(installed_mesa)" == *bpo12* ]]; then
  echo "install-webgpu.sh: libvulkan1 and mesa-vulkan-drivers $(installed_mesa) already installed"
  exit 0
fi

# The mirror host apt already uses for bookworm (deb822 .sources or one-line .list), default deb.debian.org.
mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
  | grep -v security | grep -oE 'https?://[^ ]+/debian/?' | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
list=/etc/apt/sources.list.d/bookworm-backports.list
if ! grep -qsr 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb ${mirror%/} bookworm-backports main" > "$list"
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
echo "install-webgpu.sh: installed mesa-vulkan-drivers $(installed_mesa)"
