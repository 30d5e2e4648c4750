#!/usr/bin/env bash
# End-to-end test in a real VS Code: installs code-server and Chromium if needed (scripts/e2e/install.sh), builds
# and packages the extension, then runs two browser tests in headless Chromium, each against its own private
# code-server on 127.0.0.1 (fresh profile and extensions folder, the .vsix installed): the first run from an empty
# window through the walkthrough (test/e2e/walkthrough.e2e.mjs), and a generated workspace with a tiny model,
# adapter and dataset (test/e2e/lora-drop.e2e.mjs). The exit code is 0 when both pass.
#   E2E_OUT          screenshots and logs (default test-output/e2e)
#   E2E_SKIP_BUILD=1 use the existing out/, dist/ and .vsix (VSIX=path names one)
#   E2E_KEEP=1       keep the temporary folder (workspaces, profiles, server logs) and print its path
#   E2E_UPDATE_DOCS=1 after passing, copy the panel and walkthrough screenshots into media/ and docs/images/
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
stop_server() {
  if [ -n "$SERVER_PGID" ]; then
    # setsid made the server the leader of its own process group: this stops it and its extension hosts only.
    kill -TERM -- -"$SERVER_PGID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 -- -"$SERVER_PGID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- -"$SERVER_PGID" 2>/dev/null || true
    SERVER_PGID=
  fi
}
cleanup() {
  local rc=$?
  stop_server
  # The extension host's own log is the first thing to read when the test fails.
  if [ $rc -ne 0 ]; then
    for s in "$WORK"/server-*/data/logs; do
      [ -d "$s" ] && mkdir -p "$OUT/logs/$(basename "$(dirname "$(dirname "$s")")")" && cp -r "$s/." "$OUT/logs/$(basename "$(dirname "$(dirname "$s")")")/" 2>/dev/null || true
    done
  fi
  if [ "${E2E_KEEP:-}" = 1 ]; then echo "e2e: kept $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
export EXTENSIONS_GALLERY='{}'   # no gallery URL: the Marketplace / Open VSX are never contacted

# One private code-server per browser test: its own profile, extensions folder, logs and TMPDIR under $WORK/server-<name>
# (code-server writes its logs and heartbeat under the XDG folders, one vscode-ipc-*.sock per extension host in
# TMPDIR, and without --config ~/.config/code-server). Each browser session leaves an extension host behind, so
# every test gets a fresh server. Sets SERVER_PGID, PORT and LORA_DROP_TEST_STATE.
start_server() {
  local name=$1 folder=${2:-}
  local dir="$WORK/server-$name"
  mkdir -p "$dir/tmp" "$dir/xdg" "$dir/data/User" "$dir/exts"
  local cs=(env XDG_DATA_HOME="$dir/xdg" XDG_CONFIG_HOME="$dir/xdg" TMPDIR="$dir/tmp" "$CS_BIN" --config "$dir/config.yaml")
  # A free port on loopback, so concurrent runs on one machine do not collide.
  PORT="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
  cat > "$dir/config.yaml" <<YAML
bind-addr: 127.0.0.1:$PORT
auth: none
cert: false
disable-telemetry: true
disable-update-check: true
disable-workspace-trust: true
disable-getting-started-override: true
user-data-dir: $dir/data
extensions-dir: $dir/exts
YAML
  cat > "$dir/data/User/settings.json" <<'JSON'
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
  "window.restoreWindows": "none",
  "loraDrop.device": "cpu"
}
JSON
  "${cs[@]}" --install-extension "$VSIX" >"$OUT/install-extension-$name.log" 2>&1 || { cat "$OUT/install-extension-$name.log"; exit 1; }
  # The extension mirrors its test snapshot (extension/host/testApi.ts) to this file; the test reads state from it.
  export LORA_DROP_TEST_STATE="$dir/test-state.json"
  if [ -n "$folder" ]; then setsid "${cs[@]}" "$folder" >"$OUT/server-$name.log" 2>&1 &
  else setsid "${cs[@]}" >"$OUT/server-$name.log" 2>&1 &
  fi
  SERVER_PGID=$!
  local t
  t=$(ms)
  until curl -fs -o /dev/null "http://127.0.0.1:$PORT/healthz"; do
    kill -0 "$SERVER_PGID" 2>/dev/null || { cat "$OUT/server-$name.log"; exit 1; }
    [ $(( $(ms) - t )) -lt 60000 ] || { echo "e2e: code-server did not answer within 60 s" >&2; exit 1; }
    sleep 0.1
  done
  lap "$name: extension installed from $(basename "$VSIX"), code-server listening on 127.0.0.1:$PORT"
}

rc=0
# 1. The first run: an empty window, the walkthrough, the demo workspace it creates, profile, heatmap, T, prune.
mkdir -p "$WORK/demo"
start_server walkthrough
set +e
VSCODE_URL="http://127.0.0.1:$PORT" DEMO_FOLDER="$WORK/demo" TEST_STATE="$LORA_DROP_TEST_STATE" \
  E2E_OUT="$OUT" node "$ROOT/test/e2e/walkthrough.e2e.mjs"
r=$?
set -e
stop_server
lap "walkthrough test finished (exit $r)"
[ $r -eq 0 ] || rc=$r

# 2. A workspace with a model, an adapter, a dataset and a broken adapter: palette, heatmap, themes, Explorer prune,
#    the error path.
node out/scripts/e2e/makeWorkspace.js "$WORK/workspace" "$WORK/fixture.json"
start_server workspace "$WORK/workspace"
set +e
VSCODE_URL="http://127.0.0.1:$PORT" FIXTURE="$WORK/fixture.json" TEST_STATE="$LORA_DROP_TEST_STATE" \
  E2E_OUT="$OUT" node "$ROOT/test/e2e/lora-drop.e2e.mjs"
r=$?
set -e
stop_server
lap "workspace test finished (exit $r)"
[ $r -eq 0 ] || rc=$r

# The screenshots the README and the walkthrough show are these tests' own, never drawn by hand.
if [ $rc -eq 0 ] && [ "${E2E_UPDATE_DOCS:-}" = 1 ]; then
  mkdir -p "$ROOT/docs/images"
  cp "$OUT/panel-demo.png" "$ROOT/media/panel.png"
  cp "$OUT/walkthrough.png" "$OUT/walkthrough-done.png" "$ROOT/docs/images/"
  lap "copied the screenshots to media/panel.png and docs/images/"
fi
exit $rc
