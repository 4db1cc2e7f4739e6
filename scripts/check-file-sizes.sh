#!/bin/sh
# Files stay small (CONVENTIONS.md, "Files stay small"): none over 300 lines in src/scheduling/ (the
# engine is read whole when a deadline misbehaves) and none over 400 anywhere else in src/. Lists every
# file over its limit and fails; prints one line when none is. src/schema/schema.graphql is left out:
# `npm run schema:emit` writes it from the code, whose files are counted.
set -eu
cd "$(dirname "$0")/.."
over=$(find src -type f ! -path src/schema/schema.graphql -exec wc -l {} + | awk '
  $2 == "total" { next }
  $2 ~ /^src\/scheduling\// && $1 > 300 { printf "%s: %d lines (limit 300 in src/scheduling/)\n", $2, $1; next }
  $1 > 400 { printf "%s: %d lines (limit 400 in src/)\n", $2, $1 }
' | sort)
if [ -n "$over" ]; then
  echo "files over their size limit:"
  echo "$over"
  exit 1
fi
echo "file sizes: ok"
