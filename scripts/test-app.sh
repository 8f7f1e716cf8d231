#!/usr/bin/env bash
# The real app, end to end: builds the UI and the app (the test profile, shared with `cargo test`), makes the demo
# model's BF16 folder, starts a virtual X screen, D-Bus and tauri-driver (WebKitWebDriver underneath), and runs
# tests/e2e/app.test.mjs against the window. The app runs with a fresh data folder and a home without models, so
# nothing on this machine leaks in. Screenshots of every view: target/e2e-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
driver=$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")
if [ ! -x "$driver" ]; then
  echo "== installing tauri-driver (crates.io)"
  cargo install tauri-driver --locked --quiet
fi
[ -d node_modules ] || npm ci --no-audit --no-fund
echo "== UI build"
npm run build --silent
echo "== app build"
cargo build --profile test -p pocketlm-app -p pocketlm-cli
POCKETLM_BIN=target/debug/pocketlm scripts/make-demo-source.sh

scratch=$(mktemp -d)
xvfb_pid=
cleanup() { [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT
mkdir -p "$scratch/home" "$scratch/data/models"
display=:$((70 + RANDOM % 20))
Xvfb "$display" -screen 0 1200x800x24 -nolisten tcp >/dev/null 2>&1 & xvfb_pid=$!
sleep 1

export DISPLAY=$display WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1
export POCKETLM_APP="$root/target/debug/pocketlm-app"
export POCKETLM_DEMO_SOURCE="$root/models/SmolLM2-135M-Instruct"
export POCKETLM_DATA_DIR="$scratch/data" POCKETLM_MODELS_DIR="$scratch/data/models"
export E2E_SCRATCH="$scratch" E2E_SCREENSHOTS="$root/target/e2e-screenshots"
# No Hugging Face cache, Ollama store or LM Studio folder of this machine's user.
export HOME="$scratch/home" XDG_DATA_HOME="$scratch/home/.local/share" XDG_CACHE_HOME="$scratch/home/.cache"
export HF_HOME="$scratch/home/hf" OLLAMA_MODELS="$scratch/home/ollama"
port=$((4400 + RANDOM % 100))
export TAURI_DRIVER_URL="http://127.0.0.1:$port"
rm -rf "$E2E_SCREENSHOTS"
dbus-run-session -- bash -c '
  "$0" --port "$1" --native-driver /usr/bin/WebKitWebDriver >"$E2E_SCRATCH/tauri-driver.log" 2>&1 & drv=$!
  trap "kill $drv 2>/dev/null" EXIT
  node --test --test-concurrency=1 tests/e2e/app.test.mjs
' "$driver" "$port" || { echo "--- tauri-driver log"; tail -50 "$scratch/tauri-driver.log"; exit 1; }
echo "screenshots: $E2E_SCREENSHOTS"
