#!/bin/bash
# Installs what the dashboard's browser test needs: Debian's chromium and node, and
# playwright-core from npm (package-lock.json pins it) into tests/browser/node_modules.
# Playwright never downloads a browser here: the test drives /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")"

missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  echo "browser test: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -f node_modules/playwright-core/package.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
echo "browser test: chromium $(chromium --version 2>/dev/null | awk '{print $2}'), node $(node --version)," \
     "playwright-core $(node -p "require('./node_modules/playwright-core/package.json').version")"
