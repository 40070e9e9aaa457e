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
# two BASE runs with each other: the drift between the BASE runs is this machine's run-to-run
# noise, per bench. A bench is flagged only when HEAD differs from *both* BASE runs with the
# whole 95 % interval of the change beyond that drift (and beyond a floor, REGRESS_FLOOR_PCT,
# default 5 %). Ratios
# between comparison partners (validation ÷ bare verify, sync ÷ validation) are given per run:
# they do not depend on the machine's speed of the hour. Exit 1 when a bench regressed.
#
# Arguments after `--` go to criterion (time budget, a filter). The sources are exported with
# `git archive` into target/regress/ and built one after the other with the workspace's own
# target/ (shared dependencies), each tree's bench executables copied to target/regress/bin/;
# criterion's data is in target/regress/criterion. One run at a time (they share that
# directory). Needs node (the summary and cargo's JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

if [ $# -lt 2 ]; then
  sed -n '2,23p' "$0" >&2
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

# Builds the benches of source tree $1 and copies their executables to bin/$2/. Cargo names a
# workspace's own crates by their path inside the workspace, so two copies of the workspace
# share artifact names in one target directory: the workspace's packages are cleaned first, or
# cargo would take the other copy's build as fresh.
build() {
  echo "== $2: building benches ${benches[*]} in $1" >&2
  local members
  members="$(cd "$1" && cargo metadata -q --no-deps --format-version 1 |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>
      console.log(JSON.parse(s).packages.map(p=>"-p "+p.name).join(" ")))')"
  # shellcheck disable=SC2086 # the -p NAME words
  (cd "$1" && cargo clean -q --release $members)
  rm -rf "$work/bin/$2"
  mkdir -p "$work/bin/$2"
  for bench in "${benches[@]}"; do
    (cd "$1" && nice cargo bench -q -p benches --bench "$bench" --no-run --message-format=json) |
      node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of s.split("\n")){
        if(!l)continue;const m=JSON.parse(l);if(m.executable)console.log(m.executable)}})' |
      while IFS= read -r exe; do cp "$exe" "$work/bin/$2/$bench"; done
  done
}

# Runs the benches built as bin/$1 (from tree $2) with criterion arguments $3….
run_benches() {
  local bin="$1" src="$2"
  shift 2
  for bench in "${benches[@]}"; do
    (cd "$src/benches" && nice "$work/bin/$bin/$bench" --bench --noplot "$@" "${criterion_args[@]}")
  done
}

# Has criterion compare saved baseline $2 (as new) with $3 (as base), sampling nothing, and
# keeps every bench's change estimates in changes/$1/.
compare() {
  find "$CRITERION_HOME" -type d -name change -prune -exec rm -rf {} +
  run_benches head "$head_src" --load-baseline "$2" --baseline "$3" > "$work/compare-$1.txt" 2>&1
  (cd "$CRITERION_HOME" && find . -path '*/change/estimates.json' -print0) |
    while IFS= read -r -d '' file; do
      mkdir -p "$work/changes/$1/$(dirname "$(dirname "$file")")"
      cp "$CRITERION_HOME/$file" "$work/changes/$1/$(dirname "$(dirname "$file")")/estimates.json"
    done
}

base_src="$(source_tree "$base_ref")"
head_src="$(source_tree "$head_ref")"
build "$base_src" base
build "$head_src" head
echo "== measuring: base, head, base again" >&2
run_benches base "$base_src" --save-baseline base1
run_benches head "$head_src" --save-baseline head
run_benches base "$base_src" --save-baseline base2
compare noise base2 base1
compare head-vs-base1 head base1
compare head-vs-base2 head base2
node "$root/benches/regress.js" "$work" "$base_ref" "$head_ref" | tee "$work/summary.md"
