#!/usr/bin/env bash
# The web UI's checks: install from the lockfile when needed, type-check and build, component tests (happy-dom),
# then the built UI in headless Chromium with a fake backend. Screenshots go to target/ui-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  nice -n 10 npm ci --no-audit --no-fund
fi
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "error: the browser tests need Chromium at ${CHROMIUM:-/usr/bin/chromium} (Debian: apt-get install chromium)" >&2
  exit 1
fi

echo "== build (tsc --noEmit && vite build)"
nice -n 10 npm run build
echo "== component tests"
nice -n 10 npm run test:ui
echo "== browser tests"
# test:browser builds again; the build takes well under a second, and keeps that script usable on its own.
nice -n 10 npm run test:browser
