#!/usr/bin/env bash
# The web client's checks, as `./natter test` runs them: install what is missing (Node.js, npm,
# Debian's Chromium), then `npm ci`, type check and unit tests (Vitest), the production build and
# its size budget, and the end-to-end tests in headless Chromium against real services.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
if ! command -v npm >/dev/null; then
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
e2e/install-chromium.sh
echo "== web: npm ci"
scripts/npm-ci.sh
echo "== web: the generated contract is current"
# contract.json is the Rust code's (a test in auth fails while it is stale); the TypeScript and
# validators made from it must be what is committed.
npm run --silent generate
if ! git diff --exit-code --stat -- src/api/generated; then
  echo "web/src/api/generated is stale: run \`./natter generate\` and commit it" >&2
  exit 1
fi
echo "== web: format, type check and unit tests"
npm run --silent format:check
npm run --silent typecheck
npm test --silent
echo "== web: build and bundle budget"
npm run --silent build >/dev/null
npm run --silent budget
echo "== web: end-to-end (headless Chromium)"
NATTER_E2E_CLIENT_BUILT=1 node e2e/run.mjs
