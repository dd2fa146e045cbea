#!/usr/bin/env bash
# Installs Debian's Chromium for the end-to-end tests, if missing. playwright-core drives it; a
# tool's own browser download is not used.
set -euo pipefail
if command -v chromium >/dev/null || [[ -x "${NATTER_CHROMIUM:-}" ]]; then exit 0; fi
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
