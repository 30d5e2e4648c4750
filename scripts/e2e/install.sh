#!/usr/bin/env bash
# Installs what the end-to-end test needs, idempotently and offline-safe (only Debian's archive and the npm
# registry are used): Chromium, ripgrep and the build dependencies of code-server's native modules from apt, then
# code-server 4.100.3 (= VS Code 1.100.3, the last release that runs on Node 20) from npm into a cache folder.
# playwright-core and @vscode/vsce are the project's devDependencies (npm ci installs them).
#   CODE_SERVER_DIR   where code-server goes (default /opt/code-server when writable, else ./.cache/code-server)
# Prints the code-server binary's path as its last line.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CODE_SERVER_VERSION=4.100.3
if [ -z "${CODE_SERVER_DIR:-}" ]; then
  if mkdir -p /opt/code-server 2>/dev/null && [ -w /opt/code-server ]; then CODE_SERVER_DIR=/opt/code-server
  else CODE_SERVER_DIR="$ROOT/.cache/code-server"; fi
fi
CS_BIN="$CODE_SERVER_DIR/node_modules/.bin/code-server"

# 1. System packages. ripgrep replaces @vscode/ripgrep's download from GitHub; libkrb5-dev is needed by the
#    'kerberos' native module; g++/make/python3 and the Node headers build node-pty, spdlog and the others.
missing=()
for p in chromium ripgrep libkrb5-dev g++ make python3 fonts-liberation ca-certificates; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "e2e install: apt packages ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$CS_BIN" ] || [ "$(node -p "require('$CODE_SERVER_DIR/node_modules/code-server/package.json').version" 2>/dev/null)" != "$CODE_SERVER_VERSION" ]; then
  echo "e2e install: code-server $CODE_SERVER_VERSION into $CODE_SERVER_DIR (native modules build; about a minute)"
  # 2. @vscode/ripgrep's postinstall looks in $TMPDIR/vscode-ripgrep-cache-<its version>/ before downloading, so
  #    a tarball of Debian's rg under the asset name it expects means no download. The names fit the
  #    @vscode/ripgrep 1.15.11 that code-server 4.100.3 pins (see its lib/postinstall.js for another version).
  #    A private TMPDIR keeps the seeded cache and the install together.
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/tmp/vscode-ripgrep-cache-1.15.11" "$tmp/rg"
  cp "$(command -v rg)" "$tmp/rg/rg"
  tar czf "$tmp/tmp/vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$tmp/rg" rg

  # 3. code-server's postinstall runs 'npm install' in lib/vscode and compiles the native modules.
  #    npm_config_unsafe_perm=true: its postinstall.sh refuses to run as root otherwise (npm 11 only warns that it
  #      does not know the setting; the script reads the variable itself).
  #    npm_config_yes=true: node-pty's postinstall runs 'npx node-gyp', which a user config with yes=false cancels.
  #    npm_config_nodedir: node-gyp builds against the local Node headers instead of downloading them.
  mkdir -p "$CODE_SERVER_DIR"
  [ -f "$CODE_SERVER_DIR/package.json" ] || echo '{"name":"code-server-host","private":true}' > "$CODE_SERVER_DIR/package.json"
  nodedir="${npm_config_nodedir:-}"
  [ -z "$nodedir" ] && [ -f /usr/include/node/node.h ] && nodedir=/usr
  (cd "$CODE_SERVER_DIR" && env TMPDIR="$tmp/tmp" npm_config_unsafe_perm=true npm_config_yes=true \
     ${nodedir:+npm_config_nodedir="$nodedir"} \
     npm install --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION")
fi
[ -x "$CS_BIN" ] || { echo "e2e install: $CS_BIN is missing after the install" >&2; exit 1; }
echo "$CS_BIN"
