#!/usr/bin/env bash
# demo.sh [HOST:PORT] -- what `make run` serves, in five steps: a new
# user's list changes first through the real-time profile (at once), then
# through a new model generation (the worker trains on the same actions and
# publishes; nginx swaps to it within a few seconds).
#
#   make run            # in one terminal
#   ./conf/demo.sh      # in another (default 127.0.0.1:8080)
set -euo pipefail

base=http://${1:-127.0.0.1:8080}
user=demo-$(date +%s)
show() {
    python3 -c '
import json, sys
r = json.load(sys.stdin)
items = ", ".join(x["item_id"] + " (" + str(x.get("category")) + ")"
                  for x in r["recommendations"])
print("  source=%s generation=%s: %s" % (r["source"], r["model_generation"], items))'
}
generation() {
    curl -sf "$base/health" | python3 -c \
        'import json, sys; print(json.load(sys.stdin)["model_generation"])'
}

g0=$(generation)
echo "1. model generation $g0; $user is new, so gets the popular items:"
curl -sf "$base/recommendations/$user?num_recommendations=5" | show

echo "2. $user clicks five items of category cat-07:"
items=$(curl -sf "$base/recommendations/$user?num_recommendations=5&category=cat-07" \
        | python3 -c 'import json, sys
print(" ".join(x["item_id"] for x in json.load(sys.stdin)["recommendations"]))')
for item in $items; do
    curl -sf -X POST "$base/actions" -H 'Content-Type: application/json' \
        -d "{\"user_id\":\"$user\",\"item_id\":\"$item\",\"action_type\":\"Click\"}" \
        >/dev/null
    echo "   Click $item"
done

echo "3. at once, through the real-time profile (seen items excluded):"
curl -sf "$base/recommendations/$user?num_recommendations=5&exclude_seen=1" | show

echo "4. waiting for the worker to publish a generation that has learned $user ..."
for _ in $(seq 1 60); do
    g=$(generation)
    [ "$g" -gt "$g0" ] && break
    sleep 0.5
done
if [ "$g" -le "$g0" ]; then
    echo "   no new generation after 30 s: is the worker running? (make run" \
         "starts it; see build/run/worker.log)" >&2
    exit 1
fi
echo "   generation $g is served"

echo "5. now from the trained model ($user has a learned vector):"
curl -sf "$base/recommendations/$user?num_recommendations=5&exclude_seen=1" | show
