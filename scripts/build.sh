#!/bin/sh
# The one build: TypeScript to JavaScript in dist/. `npm run build`, the Dockerfile and .ci/run run it.
#
# --unless-pruned (npm start, npm run migrate, npm run token): a production install pruned of its
# devDependencies (`npm prune --omit=dev`) has no TypeScript and runs dist/ as built; a development
# checkout compiles first, so a change to src/ is always what runs.
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--unless-pruned" ] && [ ! -e node_modules/typescript/package.json ]; then
  if [ -e dist/src/main.js ]; then exit 0; fi
  echo "No build in dist/ and no TypeScript to make one: run npm install (development) or npm ci && npm run build (production)." >&2
  exit 1
fi
exec node node_modules/typescript/bin/tsc -p tsconfig.build.json
