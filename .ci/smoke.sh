#!/usr/bin/env bash
# The newcomer's first run, on this clone: README.md's run command, from the repository root,
# exactly as written (default listen address and data dir); then the walk-through's first
# generation (`Prefer: wait`) and the download of its PNG; then a clean stop. The commands are
# read from README.md (.ci/readme.sh), so a README that stops working fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
run="$(.ci/readme.sh run)"
generate="$(.ci/readme.sh first-generation)"
download="$(.ci/readme.sh download)"
base=http://127.0.0.1:8080
work="$(mktemp -d)"
log="$work/server.log"
fresh_data=0
[ -e easel-data ] || fresh_data=1

if curl -fsS -o /dev/null "$base/health" 2>/dev/null; then
    echo "smoke: something already answers on $base; stop it first" >&2
    exit 1
fi

echo "smoke: $run"
# Its own process group, so the stop reaches cargo and the server it started.
setsid bash -c "$run" >"$log" 2>&1 &
group=$!
stop() {
    kill -TERM -- "-$group" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 -- "-$group" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$group" 2>/dev/null || true
}
fail() {
    echo "smoke: $*" >&2
    echo "--- server output (last 60 lines)" >&2
    tail -n 60 "$log" >&2 || true
    stop
    exit 1
}
trap stop EXIT

# In CI the test stage made the release build (README's test command uses it), so cargo only
# recompiles what the tests' dev-dependency features changed; on its own this script waits for
# a full build first.
deadline=$((SECONDS + 2400))
until curl -fsS -o /dev/null "$base/health" 2>/dev/null; do
    kill -0 "$group" 2>/dev/null || fail "the server exited before answering /health"
    [ "$SECONDS" -lt "$deadline" ] || fail "no answer from $base/health after 40 minutes"
    sleep 1
done
echo "smoke: /health answers after ${SECONDS}s"

cd "$work"
answer="$(eval "$generate")" || fail "the walk-through's first generation failed"
image_id="$(printf '%s' "$answer" | python3 -c '
import json, sys
g = json.load(sys.stdin)
assert g.get("status") == "succeeded", "status %s: %s" % (g.get("status"), g)
print(g["images"][0]["id"])
')" || fail "unexpected answer to the first generation: $answer"
eval "${download//IMG_ID/$image_id}" || fail "downloading $image_id failed"
python3 - sunset.png <<'PY' || fail "sunset.png is not the 16:9 PNG the walk-through promises"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
width, height = struct.unpack(">II", data[16:24])
assert abs(width / height - 16 / 9) < 0.01, f"{width}x{height} is not 16:9"
print(f"smoke: {sys.argv[1]} is a {width}x{height} PNG ({len(data)} bytes)")
PY
cd "$root"
[ -f easel-data/easel.db ] || fail "the default data dir ./easel-data holds no database"

trap - EXIT
stop
rm -rf "$work"
[ "$fresh_data" = 1 ] && rm -rf easel-data
echo "smoke: 1 passed, 0 failed"
