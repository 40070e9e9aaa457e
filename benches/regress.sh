#!/usr/bin/env bash
# Wall-clock regression check of two commits on this machine, judged against the noise the
# machine shows in the same sitting (docs/regression-ci.md, "Wall-clock benches").
#
#   benches/regress.sh BASE HEAD                   # e.g. benches/regress.sh main HEAD
#   benches/regress.sh main .                      # `.`: the working tree as it is, uncommitted
#   BENCHES="msg" benches/regress.sh A B -- --measurement-time 3 validate
#
# Runs the criterion benches (BENCHES, default `msg sync`: CPU-bound, no sockets) three times,
# BASE, HEAD, BASE again, each saved as a criterion baseline (--save-baseline). Then, without
# sampling again (--load-baseline), it has criterion compare HEAD with each BASE run and the
# two BASE runs with each other: the last is this machine's run-to-run noise, per bench. A
# bench is flagged only when HEAD differs from *both* BASE runs with the whole 95 % interval of
# the change beyond that noise (and beyond a floor, REGRESS_FLOOR_PCT, default 2 %). Ratios
# between comparison partners (validation ÷ bare verify, sync ÷ validation) are given per run:
# they do not depend on the machine's speed of the hour. Exit 1 when a bench regressed.
#
# Arguments after `--` go to criterion (time budget, a filter). The sources are exported with
# `git archive` into target/regress/ and built with the workspace's own target/ (shared
# dependencies); criterion's data is in target/regress/criterion. Needs node (the summary).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

if [ $# -lt 2 ]; then
  sed -n '2,20p' "$0" >&2
  exit 2
fi
base_ref="$1"
head_ref="$2"
shift 2
if [ "${1:-}" = "--" ]; then
  shift
fi
criterion_args=("$@")
read -r -a benches <<< "${BENCHES:-msg sync}"
work="$root/target/regress"
export CARGO_TARGET_DIR="$root/target"
export CRITERION_HOME="$work/criterion"
rm -rf "$CRITERION_HOME" "$work/changes"
mkdir -p "$work" "$CRITERION_HOME"

# The source tree of a ref: `.` is the working tree; anything else is exported from git.
source_tree() {
  if [ "$1" = "." ]; then
    echo "$root"
    return
  fi
  local commit dir
  commit="$(git rev-parse --verify "$1^{commit}")"
  dir="$work/src-$commit"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir.partial"
    git archive "$commit" | tar -x -C "$dir.partial"
    mv "$dir.partial" "$dir"
  fi
  echo "$dir"
}

# Runs the benches of source tree $1, saving them as criterion baseline $2.
measure() {
  echo "== $2: benches ${benches[*]} in $1" >&2
  for bench in "${benches[@]}"; do
    (cd "$1" && nice cargo bench -q -p benches --bench "$bench" -- --noplot \
      --save-baseline "$2" "${criterion_args[@]}")
  done
}

# Has criterion compare saved baseline $2 (as new) with $3 (as base), sampling nothing, and
# keeps every bench's change estimates in changes/$1/.
compare() {
  find "$CRITERION_HOME" -type d -name change -prune -exec rm -rf {} +
  : > "$work/compare-$1.txt"
  for bench in "${benches[@]}"; do
    (cd "$head_src" && cargo bench -q -p benches --bench "$bench" -- --noplot \
      --load-baseline "$2" --baseline "$3" "${criterion_args[@]}") >> "$work/compare-$1.txt" 2>&1
  done
  (cd "$CRITERION_HOME" && find . -path '*/change/estimates.json' -print0) |
    while IFS= read -r -d '' file; do
      mkdir -p "$work/changes/$1/$(dirname "$(dirname "$file")")"
      cp "$CRITERION_HOME/$file" "$work/changes/$1/$(dirname "$(dirname "$file")")/estimates.json"
    done
}

base_src="$(source_tree "$base_ref")"
head_src="$(source_tree "$head_ref")"
measure "$base_src" base1
measure "$head_src" head
measure "$base_src" base2
compare noise base2 base1
compare head-vs-base1 head base1
compare head-vs-base2 head base2
node "$root/benches/regress.js" "$work" "$base_ref" "$head_ref" | tee "$work/summary.md"
