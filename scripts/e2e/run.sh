#!/usr/bin/env bash
# End-to-end test in a real VS Code: installs code-server and Chromium if needed (scripts/e2e/install.sh), builds
# and packages the extension, generates a workspace with a tiny model + adapter + dataset, starts a private
# code-server on 127.0.0.1 with a fresh profile and extensions folder, installs the .vsix, runs
# test/e2e/lora-drop.e2e.mjs in headless Chromium, and stops the server. The exit code is the test's result.
#   E2E_OUT          screenshots and logs (default test-output/e2e)
#   E2E_SKIP_BUILD=1 use the existing out/, dist/ and .vsix (VSIX=path names one)
#   E2E_KEEP=1       keep the temporary folder (workspace, profile, server logs) and print its path
#   CODE_SERVER_DIR  where install.sh puts code-server
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
OUT="${E2E_OUT:-$ROOT/test-output/e2e}"
ms() { date +%s%3N; }
T0=$(ms)
lap() { echo "e2e: $1 ($(( $(ms) - T0 )) ms)"; }

mkdir -p "$OUT" && rm -rf "$OUT"/*.png "$OUT"/*.log "$OUT"/logs
CS_BIN="$("$ROOT/scripts/e2e/install.sh" | tail -n 1)"
lap "tools ready: $CS_BIN"

if [ "${E2E_SKIP_BUILD:-}" != 1 ]; then
  # scripts/package.mjs builds (tsc + webview bundle) and writes lora-drop-<version>-linux-x64.vsix in the root.
  npm run --silent package >"$OUT/package.log" 2>&1 || { cat "$OUT/package.log"; exit 1; }
  lap "built and packaged"
fi
VSIX="${VSIX:-$(ls -t "$ROOT"/lora-drop-*-linux-x64.vsix 2>/dev/null | head -n 1 || true)}"
[ -n "$VSIX" ] && [ -f "$VSIX" ] || { echo "e2e: no .vsix found (npm run package writes one)" >&2; exit 1; }

WORK="$(mktemp -d /tmp/lora-drop-e2e.XXXXXX)"
SERVER_PGID=
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PGID" ]; then
    # setsid made the server the leader of its own process group: this stops it and its extension hosts only.
    kill -TERM -- -"$SERVER_PGID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 -- -"$SERVER_PGID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- -"$SERVER_PGID" 2>/dev/null || true
  fi
  # The extension host's own log is the first thing to read when the test fails.
  if [ $rc -ne 0 ] && [ -d "$WORK/data/logs" ]; then
    mkdir -p "$OUT/logs" && cp -r "$WORK/data/logs/." "$OUT/logs/" 2>/dev/null || true
  fi
  if [ "${E2E_KEEP:-}" = 1 ]; then echo "e2e: kept $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT

# code-server writes its logs and heartbeat under the XDG folders and one vscode-ipc-*.sock per extension host
# in TMPDIR; without --config it would also write ~/.config/code-server. Keep all of it in $WORK.
mkdir -p "$WORK/tmp" "$WORK/xdg" "$WORK/data/User" "$WORK/exts"
CS=(env XDG_DATA_HOME="$WORK/xdg" XDG_CONFIG_HOME="$WORK/xdg" TMPDIR="$WORK/tmp" "$CS_BIN" --config "$WORK/config.yaml")
export EXTENSIONS_GALLERY='{}'   # no gallery URL: the Marketplace / Open VSX are never contacted

node out/scripts/e2e/makeWorkspace.js "$WORK/workspace" "$WORK/fixture.json"

# A free port on loopback, so concurrent runs on one machine do not collide.
PORT="${PORT:-$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")}"
cat > "$WORK/config.yaml" <<YAML
bind-addr: 127.0.0.1:$PORT
auth: none
cert: false
disable-telemetry: true
disable-update-check: true
disable-workspace-trust: true
disable-getting-started-override: true
user-data-dir: $WORK/data
extensions-dir: $WORK/exts
YAML
cat > "$WORK/data/User/settings.json" <<'JSON'
{
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "extensions.ignoreRecommendations": true,
  "workbench.enableExperiments": false,
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.colorTheme": "Default Dark Modern",
  "security.workspace.trust.enabled": false,
  "git.enabled": false,
  "npm.autoDetect": "off",
  "typescript.disableAutomaticTypeAcquisition": true,
  "explorer.confirmDelete": false,
  "window.restoreWindows": "none"
}
JSON

"${CS[@]}" --install-extension "$VSIX" >"$OUT/install-extension.log" 2>&1 || { cat "$OUT/install-extension.log"; exit 1; }
lap "extension installed from $(basename "$VSIX")"

# The extension mirrors its test snapshot (extension/host/testApi.ts) to this file; the test reads state from it.
export LORA_DROP_TEST_STATE="$WORK/test-state.json"
setsid "${CS[@]}" "$WORK/workspace" >"$OUT/server.log" 2>&1 &
SERVER_PGID=$!
t=$(ms)
until curl -fs -o /dev/null "http://127.0.0.1:$PORT/healthz"; do
  kill -0 "$SERVER_PGID" 2>/dev/null || { cat "$OUT/server.log"; exit 1; }
  [ $(( $(ms) - t )) -lt 60000 ] || { echo "e2e: code-server did not answer within 60 s" >&2; exit 1; }
  sleep 0.1
done
lap "code-server listening on 127.0.0.1:$PORT"

set +e
VSCODE_URL="http://127.0.0.1:$PORT" FIXTURE="$WORK/fixture.json" TEST_STATE="$LORA_DROP_TEST_STATE" \
  E2E_OUT="$OUT" node "$ROOT/test/e2e/lora-drop.e2e.mjs"
rc=$?
set -e
lap "browser test finished (exit $rc)"
exit $rc
