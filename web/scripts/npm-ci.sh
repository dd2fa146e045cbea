#!/usr/bin/env bash
# `npm ci` for web/, always through npm 10. npm 11 refuses a lock file that lacks an entry for every
# platform's optional native package (rollup's android and freebsd builds, ...), which a lock made
# against a registry mirror without them does lack; npm 10 installs the same lock exactly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ "$(npm --version)" == 10.* ]]; then
  exec npm ci --no-audit --no-fund --loglevel=error
fi
exec npx -y npm@10 ci --no-audit --no-fund --loglevel=error
