#!/bin/bash
# Lints proto/openapi.yaml with Redocly's recommended rules (make openapi-lint, run by CI).
# Installs @redocly/cli from npm (version pinned by package-lock.json) into
# tests/openapi/node_modules on first use; Debian's nodejs/npm if they are missing.
# Errors fail; warnings are printed (the 4xx rule on routes that cannot answer one, no license).
set -euo pipefail
cd "$(dirname "$0")"

missing=""
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  echo "openapi lint: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ ! -x node_modules/.bin/redocly ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
# No usage reports or update checks: the only network here is the package registries.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
echo "openapi lint: redocly $(node_modules/.bin/redocly --version), node $(node --version)"
node_modules/.bin/redocly lint --format=stylish ../../proto/openapi.yaml
