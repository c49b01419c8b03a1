#!/usr/bin/env bash
# System packages the test suite needs beyond Python: headless Chromium for
# the steward-report browser test. Idempotent and quiet: does nothing when
# chromium is already installed; needs root (or sudo) otherwise.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
