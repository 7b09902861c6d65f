#!/usr/bin/env bash
# Print a command exactly as README.md writes it, so CI runs what a newcomer runs (never a
# copy that can drift). Usage: .ci/readme.sh run | test | first-generation | download
#   run               the first ```sh block after "Run the server"
#   test              the first ```sh block after "Run every test"
#   first-generation  the first ```sh block of "## Walk-through"
#   download          the first line of the next block that downloads .../file (no query)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    run) marker='^Run the server' ;;
    test) marker='^Run every test' ;;
    first-generation) marker='^## Walk-through' ;;
    download) marker='^The answer is the finished generation' ;;
    *) echo "usage: $0 run|test|first-generation|download" >&2; exit 2 ;;
esac
block="$(awk -v marker="$marker" '
    !found && $0 ~ marker { found = 1; next }
    found && !inside && /^```sh$/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { print }
' README.md)"
if [ -z "$block" ]; then
    echo "README.md has no sh block after /$marker/: the README's set-up changed, update .ci/readme.sh" >&2
    exit 1
fi
if [ "$1" = download ]; then
    printf '%s\n' "$block" | head -n1
else
    printf '%s\n' "$block"
fi
