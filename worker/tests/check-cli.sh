#!/usr/bin/env bash
# check-cli.sh WORKER_BINARY -- end-to-end checks of milvuso-worker's offline
# subcommands (snapshot, inspect) through the command line only: exit codes,
# published files and the `current` link, inspect's text and JSON output,
# refusal of corrupted snapshots and of bad catalogues (nothing published).
#
# Each check prints "ok - NAME" or "not ok - NAME" (with the output that
# failed it); the last line is "N passed, M failed" and the exit status is
# non-zero when any check failed.  Everything happens in a mktemp directory
# that is removed on exit.
set -euo pipefail

. "$(dirname "$0")/harness.sh"
harness_init check-cli "$@"
trap 'rm -rf "$T"' EXIT

json_field() {
    python3 -c 'import json, sys
d = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d = d[int(k)] if isinstance(d, list) else d[k]
print(len(d) if isinstance(d, list) else d)' "$1"
}

# ---- command line ------------------------------------------------------------

run "$W" --help
check "--help exits 0 and lists commands" eval 'rc_is 0 && has "^  snapshot" && has "^  inspect"'
run "$W" --version
check "--version" eval 'rc_is 0 && has "^milvuso-worker [0-9]"'
run "$W"
check "no command exits 2" eval 'rc_is 2 && has "^usage:"'
run "$W" frobnicate
check "unknown command exits 2" eval 'rc_is 2 && has "unknown command"'
run "$W" --worker-type bogus
check "unknown worker type exits 2" eval 'rc_is 2 && has "^usage:"'
run "$W" snapshot --synthetic 10
check "snapshot without --out exits 2" eval 'rc_is 2 && has "--out DIR is required"'
run "$W" snapshot --out "$T/x" --synthetic 10 --bogus
check "snapshot unknown option exits 2" eval 'rc_is 2 && has "^usage:"'
run "$W" snapshot --out "$T/x" --synthetic 10 --M 1
check "snapshot bad --M exits 2" eval 'rc_is 2 && has "--M wants"'
run "$W" snapshot --out "$T/x" --items a --synthetic 10
check "snapshot two sources exits 2" eval 'rc_is 2'
run "$W" inspect
check "inspect without PATH exits 2" eval 'rc_is 2'
run "$W" topics --help
check "topics --help names the three topics" eval 'rc_is 0 && has "log_topic, feature_topic" && has "training_topic"'
run "$W" topics --timeout 0
check "topics bad --timeout exits 2" eval 'rc_is 2 && has "--timeout must be"'
run "$W" topics extra
check "topics extra argument exits 2" eval 'rc_is 2 && has "unexpected argument"'
MILVUSO_KAFKA_BROKERS=127.0.0.1:1 run timeout 20 "$W" topics --timeout 1
check "topics: no broker answers, exit 1 naming it" eval 'rc_is 1 && has "brokers 127\.0\.0\.1:1: "'
check "nothing created by usage errors" eval '[ ! -e "$T/x" ]'

# ---- synthetic snapshot --------------------------------------------------------

S="$T/synth"
run "$W" snapshot --out "$S" --synthetic 2000 --dim 32 --categories 10 \
    --users 50 --seed 7
check "synthetic snapshot published" eval 'rc_is 0 && has "^published .*snapshot-0+1\.mvs generation 1: 2000 items \(0 deleted\), 10 categories, 50 users, dim 32 cosine"'
check "current points at generation 1" eval '[ "$(readlink "$S/current")" = snapshot-00000000000000000001.mvs ]'
run "$W" inspect "$S"
check "inspect directory" eval 'rc_is 0 && has "^items: 2000$" && has "^users: 50$" && has "^categories: 10$" && has "^deleted: 0$" && has "^popular: 2000$" && has "^dim: 32$" && has "^metric: cosine$" && has "^generation: 1$" && has "sq8 on"'
check "inspect shows samples" eval 'has "^  item-000000  category cat-" && has "^  1\. item-[0-9]+  category cat-[0-9]+  popularity 1$" && has "^  user-000002$"'
run "$W" inspect "$S/current" --json
check "inspect --json parses" eval 'rc_is 0 && [ "$(printf "%s" "$OUT" | json_field counts.items)" = 2000 ] && [ "$(printf "%s" "$OUT" | json_field counts.users)" = 50 ] && [ "$(printf "%s" "$OUT" | json_field hnsw.M)" = 16 ] && [ "$(printf "%s" "$OUT" | json_field sample.popular)" = 5 ]'

# ---- search ----------------------------------------------------------------------

run "$W" inspect "$S" --search item-000001 --k 7
check "--search returns k hits" eval 'rc_is 0 && [ "$(printf "%s\n" "$OUT" | grep -c "^hit ")" = 7 ]'
check "--search excludes the item itself" eval '! has "^hit .* item-000001 "'
run "$W" inspect "$S" --search item-000001 --k 3 --json
check "--search --json lists k hits" eval 'rc_is 0 && [ "$(printf "%s" "$OUT" | json_field search)" = 3 ]'
run "$W" inspect "$S" --search no-such-item
check "--search unknown item exits 1" eval 'rc_is 1 && has "no item"'

# ---- keep and generations ----------------------------------------------------

K="$T/keep"
for i in 1 2 3; do
    run "$W" snapshot --out "$K" --synthetic 200 --dim 8 --keep 2
    check "publish $i of 3" eval 'rc_is 0 && has "generation $i:"'
done
check "keep=2 leaves two files" eval '[ "$(count_files "$K")" = 2 ] && [ ! -e "$K/snapshot-00000000000000000001.mvs" ]'
check "current is the newest" eval '[ "$(readlink "$K/current")" = snapshot-00000000000000000003.mvs ]'
run "$W" snapshot --out "$K" --synthetic 200 --dim 8 --generation 3
check "non-increasing --generation refused" eval 'rc_is 1 && has "not newer" && [ "$(readlink "$K/current")" = snapshot-00000000000000000003.mvs ]'
run "$W" snapshot --out "$K" --synthetic 200 --dim 8 --generation 10 \
    --metric l2 --no-sq8 --M 8 --ef-construction 50 --keep 2
check "explicit generation, l2, no sq8" eval 'rc_is 0 && has "generation 10:"'
run "$W" inspect "$K"
check "inspect l2 / sq8 off / M 8" eval 'rc_is 0 && has "^metric: l2$" && has "sq8 off" && has "^hnsw: M 8, M0 16" && has "^generation: 10$"'

# ---- JSONL catalogue -----------------------------------------------------------

C="$T/cat"
cat > "$T/items.jsonl" <<'EOF'
{"item_id": "550e8400-e29b-41d4-a716-446655440001", "embedding": [0.1, 0.2, 0.3, 0.4], "category": "electronics", "tags": ["smartphone", "android"], "popularity_score": 0.8, "created_at": "2024-01-01T12:00:00Z"}
{"item_id": "book-1", "embedding": [1, 0, 0, 0], "category": "books", "popularity_score": 0.5, "created_at": 1704110400000}

{"item_id": "book-2", "embedding": [0.9, 0.1, 0, 0], "category": "books", "popularity_score": 0.9, "created_at": "2024-01-01T14:00:00+02:00"}
{"item_id": "gone", "embedding": [0, 0, 1, 0], "category": "books", "deleted": true}
{"item_id": "plain", "embedding": [0, 0, 0, 1]}
EOF
cat > "$T/users.jsonl" <<'EOF'
{"user_id": "550e8400-e29b-41d4-a716-446655440000", "embedding": [1, 1, 0, 0]}
{"user_id": "u2", "embedding": [0, 0, 1, 1]}
EOF
run "$W" snapshot --out "$C" --items "$T/items.jsonl" --users "$T/users.jsonl"
check "JSONL snapshot published" eval 'rc_is 0 && has "generation 1: 5 items \(1 deleted\), 2 categories, 2 users, dim 4 cosine"'
run "$W" inspect "$C"
check "inspect JSONL snapshot" eval 'rc_is 0 && has "^items: 5$" && has "^deleted: 1$" && has "^users: 2$" && has "^categories: 2$" && has "^popular: 4$" && has "^  1\. book-2  category books  popularity 0\.9$" && has "^  550e8400-e29b-41d4-a716-446655440000$"'
run "$W" inspect "$C" --search book-1 --k 10
check "search skips deleted and self" eval 'rc_is 0 && [ "$(printf "%s\n" "$OUT" | grep -c "^hit ")" = 3 ] && has "^hit 1 book-2 " && ! has "^hit .* gone "'

# ---- inner product: vectors as given, ranked by dot product --------------------

I="$T/ip"
cat > "$T/ip-items.jsonl" <<'EOF2'
{"item_id": "q", "embedding": [1, 0, 0]}
{"item_id": "near", "embedding": [0.9, 0.1, 0]}
{"item_id": "long", "embedding": [3, 1, 0]}
{"item_id": "zero", "embedding": [0, 0, 0]}
{"item_id": "away", "embedding": [-2, 0, 1]}
EOF2
run "$W" snapshot --out "$I" --items "$T/ip-items.jsonl" --metric ip
check "ip snapshot published (a zero vector is fine)" eval 'rc_is 0 && has "generation 1: 5 items \(0 deleted\), 0 categories, 0 users, dim 3 ip"'
run "$W" inspect "$I"
check "inspect ip" eval 'rc_is 0 && has "^metric: ip$" && has "sq8 on"'
run "$W" inspect "$I" --json
check "inspect --json ip" eval 'rc_is 0 && [ "$(printf "%s" "$OUT" | json_field metric)" = ip ]'
run "$W" inspect "$I" --search q --k 4
check "ip search: the longer vector first, distance -dot" eval 'rc_is 0 && has "^hit 1 long distance -3\.000000 " && has "^hit 2 near distance -0\.900000 " && has "^hit 3 zero distance -?0\.000000 " && has "^hit 4 away distance 2\.000000 "'
run "$W" snapshot --out "$T/cos" --items "$T/ip-items.jsonl"
check "the same catalogue under cosine refuses the zero vector" eval 'rc_is 1 && has "ip-items.jsonl:4: \"embedding\" is all zeros"'
run "$W" snapshot --out "$T/x" --synthetic 10 --metric dot
check "snapshot bad --metric exits 2" eval 'rc_is 2 && has "--metric wants cosine, l2 or ip"'

# ---- bad catalogues: FILE:LINE, nothing published ------------------------------

B="$T/bad"
bad_catalog() {     # NAME LINE REASON-REGEX FILE-LINES...
    local name=$1 line=$2 reason=$3
    shift 3
    printf '%s\n' "$@" > "$T/bad.jsonl"
    run "$W" snapshot --out "$B" --items "$T/bad.jsonl"
    check "bad catalog: $name" eval 'rc_is 1 && has "$T/bad.jsonl:$line: $reason" && [ ! -e "$B" ]'
}
bad_catalog "wrong length" 3 'field "embedding": expected 2 numbers, got 3' \
    '{"item_id": "a", "embedding": [1, 2]}' '' \
    '{"item_id": "b", "embedding": [1, 2, 3]}'
bad_catalog "duplicate id" 2 'duplicate item_id "a" \(first on line 1\)' \
    '{"item_id": "a", "embedding": [1, 2]}' \
    '{"item_id": "a", "embedding": [3, 4]}'
bad_catalog "truncated JSON" 2 'not valid JSON' \
    '{"item_id": "a", "embedding": [1, 2]}' '{"item_id": "b",'
bad_catalog "float overflow" 1 'field "embedding": element 1 is not finite as a float' \
    '{"item_id": "a", "embedding": [1, 1e39]}'
bad_catalog "Feb 30" 1 'field "created_at": day 30 out of range' \
    '{"item_id": "a", "embedding": [1], "created_at": "2024-02-30T00:00:00Z"}'
bad_catalog "id too long" 1 'field "item_id": not an id: 65 bytes long' \
    "{\"item_id\": \"$(printf 'x%.0s' {1..65})\", \"embedding\": [1]}"
bad_catalog "zero vector under cosine" 1 '"embedding" is all zeros' \
    '{"item_id": "a", "embedding": [0, 0]}'
printf '\n  \n' > "$T/empty.jsonl"
run "$W" snapshot --out "$B" --items "$T/empty.jsonl"
check "bad catalog: no items" eval 'rc_is 1 && has "empty.jsonl: no items" && [ ! -e "$B" ]'

printf '%s\n' '{"user_id": "u", "embedding": [1, 2, 3]}' > "$T/badusers.jsonl"
run "$W" snapshot --out "$C" --items "$T/items.jsonl" --users "$T/badusers.jsonl"
check "bad users file: nothing published" eval 'rc_is 1 && has "badusers.jsonl:1: field \"embedding\": expected 4 numbers, got 3" && [ "$(count_files "$C")" = 1 ] && [ "$(readlink "$C/current")" = snapshot-00000000000000000001.mvs ]'
run "$W" snapshot --out "$B" --items "$T/no-such-file.jsonl"
check "missing catalog file" eval 'rc_is 1 && has "no-such-file.jsonl: No such file" && [ ! -e "$B" ]'

# ---- offline train and eval ------------------------------------------------------
# Two taste groups: users 1-15 take items 1-20, users 16-30 take items 21-40
# (MovieLens layout: user, item, rating, time, tab-separated).

ML="$T/groups.data"
awk 'BEGIN { for (u = 1; u <= 30; u++) for (j = 0; j < 12; j++) {
        g = u <= 15 ? 0 : 20
        printf "%d\t%d\t4\t%d\n", u, g + 1 + (u * 7 + j * 3) % 20, 1000 + j } }' \
    > "$ML"
TR="$T/trained"
FAST="--set recommendation.embedding_dim=16 --set training.epochs=15"
run "$W" train --data "$ML" --out "$TR" $FAST
check "train publishes generation 1" eval 'rc_is 0 && has "^published .*gen-0+1\.mvm: generation 1, 40 items, 30 users"'
run "$W" inspect "$TR"
check "trained snapshot validates" eval 'rc_is 0 && has "^items: 40$" && has "^users: 30$" && has "^dim: 16$" && has "^metric: ip$"'
run "$W" train --data "$ML" --out "$TR" $FAST
check "second train is generation 2" eval 'rc_is 0 && has "generation 2,"'
cp "$TR/gen-00000000000000000002.mvm" "$T/gen2.mvm"
ln -sfn gen-00000000000000000001.mvm "$TR/current"
run "$W" train --data "$ML" --out "$TR" $FAST
check "after a rollback train counts from the newest file" eval 'rc_is 0 && has "generation 3," && [ "$(readlink "$TR/current")" = gen-00000000000000000003.mvm ]'
check "the newer generation 2 is not replaced" cmp -s "$T/gen2.mvm" "$TR/gen-00000000000000000002.mvm"
run "$W" train --data "$ML" --out "$TR" $FAST --generation 3
check "train refuses a generation that is not newer" eval 'rc_is 1 && has "not newer than 3" && [ "$(readlink "$TR/current")" = gen-00000000000000000003.mvm ]'
run "$W" eval --data "$ML" --split random:0.75 --k 5 --json $FAST
check "eval reports the model and both baselines" eval 'rc_is 0 && has "\"ndcg\"" && has "popularity" && has "random"'
run "$W" train --data "$T/missing.data" --out "$TR"
check "train on a missing file fails" eval 'rc_is 1 && has "missing.data"'

# ---- corrupted snapshots ---------------------------------------------------------

F="$S/snapshot-00000000000000000001.mvs"
if [ -f "$F" ]; then
    size=$(stat -c %s "$F")
    cp "$F" "$T/corrupt.mvs"
    mid=$((size / 2))
    byte=$(od -An -tu1 -j "$mid" -N1 "$T/corrupt.mvs" | tr -d ' ')
    printf "\\$(printf '%03o' $(( (byte ^ 0x5a) & 255 )))" |
        dd of="$T/corrupt.mvs" bs=1 seek="$mid" count=1 conv=notrunc \
           2>/dev/null
    check "corrupt copy differs" eval '! cmp -s "$F" "$T/corrupt.mvs"'
    run "$W" inspect "$T/corrupt.mvs"
    check "flipped byte refused" eval 'rc_is 1 && has "^invalid: "'
    head -c $((size - 64)) "$F" > "$T/short.mvs"
    run "$W" inspect "$T/short.mvs"
    check "truncated file refused" eval 'rc_is 1 && has "^invalid: "'
    run "$W" inspect "$F"
    check "original still valid" eval 'rc_is 0 && has "^items: 2000$"'
else
    OUT="$F missing: the synthetic publish failed"
    not_ok "corruption checks"
fi
: > "$T/empty.mvs"
run "$W" inspect "$T/empty.mvs"
check "empty file refused" eval 'rc_is 1 && has "^invalid: "'
run "$W" inspect "$T/does-not-exist"
check "missing file refused" eval 'rc_is 1 && has "^invalid: "'

harness_finish
