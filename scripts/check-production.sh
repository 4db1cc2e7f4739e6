#!/usr/bin/env bash
# The production install path, run by .ci/run in a clean copy of the committed tree:
#   npm ci && npm run build && npm prune --omit=dev && npm run start:prod
# with `npm run token` and `npm run migrate` (the release step) working after the prune, and the server
# (MIGRATE_ON_START=false) answering GET /health 200 within HEALTH_WAIT_SECONDS. Needs PostgreSQL and
# Redis on 127.0.0.1 (as .ci/run starts them); leaves nothing behind (copy, server, database).
set -euo pipefail
cd "$(dirname "$0")/.."

DB=deadline_ci_prod
HEALTH_WAIT_SECONDS=${HEALTH_WAIT_SECONDS:-60}
ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres
work=$(mktemp -d)
server=""

cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill -TERM -- "-$server" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$server" 2>/dev/null || true
  fi
  psql "$ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

git archive HEAD | tar -x -C "$work"
cd "$work"
psql "$ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null

npm ci --no-audit --no-fund
npm run build
npm prune --omit=dev --no-audit --no-fund
if [ -e node_modules/typescript ] || [ -e node_modules/pino-pretty ]; then
  echo "check-production: devDependencies are still installed after the prune" >&2
  exit 1
fi

export NODE_ENV=production
export JWT_SECRET=ci-production-check-0123456789abcdef
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
export REDIS_PREFIX=deadline-ci-prod
export SECKILL_KEY_PREFIX=deadline-ci-prod:
export MIGRATE_ON_START=false
export PORT
PORT=$(node -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })")

token=$(npm run --silent token -- ci-check --admin)
case "$token" in
  *.*.*) echo "check-production: npm run token works without TypeScript" ;;
  *) echo "check-production: npm run token printed no token: $token" >&2; exit 1 ;;
esac

npm run migrate

# Its own session (setsid): the cleanup stops npm and the server with one signal to the group.
setsid npm run start:prod >server.log 2>&1 &
server=$!
for _ in $(seq 1 $((HEALTH_WAIT_SECONDS * 5))); do
  if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then
    echo "check-production: GET /health 200 from npm run start:prod on port $PORT"
    # JSON lines, each naming its instance.
    grep -q '"instance":' server.log || { echo "check-production: log lines carry no instance" >&2; cat server.log >&2; exit 1; }
    kill -TERM -- "-$server"
    for _ in $(seq 1 150); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    grep -q '"msg":"stopped"' server.log || { echo "check-production: the server did not stop gracefully" >&2; cat server.log >&2; exit 1; }
    echo "check-production: stopped gracefully"
    exit 0
  fi
  if ! kill -0 "$server" 2>/dev/null; then break; fi
  sleep 0.2
done
echo "check-production: no GET /health 200 within ${HEALTH_WAIT_SECONDS} s" >&2
cat server.log >&2
exit 1
