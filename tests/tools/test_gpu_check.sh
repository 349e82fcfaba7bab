#!/usr/bin/env bash
# tools/gpu_check.sh's command line and its report without a GPU, against an existing build
# (--no-build --no-gpu: nothing is built a second time and no GPU part runs, even on a GPU machine).
#   tests/tools/test_gpu_check.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
src="$1" build="$2"
script="$src/tools/gpu_check.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# bad command lines: exit 2, one line on stderr naming the problem, nothing on stdout
bad() {
  local want="$1"; shift
  "$script" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" = 2 ] || fail "gpu_check.sh $*: exit $rc, expected 2"
  [ "$(wc -l <"$tmp/err")" = 1 ] || fail "gpu_check.sh $*: $(wc -l <"$tmp/err") lines on stderr: $(cat "$tmp/err")"
  [ -s "$tmp/out" ] && fail "gpu_check.sh $*: wrote to stdout: $(cat "$tmp/out")"
  grep -qF -- "$want" "$tmp/err" || fail "gpu_check.sh $*: stderr lacks '$want': $(cat "$tmp/err")"
}
bad "usage: tools/gpu_check.sh"
bad "unknown option '--bogus'" --bogus "$tmp/o"
bad "OUT_DIR missing" --no-gpu
bad "one OUT_DIR only" "$tmp/a" "$tmp/b"
bad "--budget: expected seconds >= 60, got '5'" --budget 5 "$tmp/o"
bad "--budget: missing value" --budget
bad "--deps: '$tmp/none' is not a folder" --deps "$tmp/none" "$tmp/o"
bad "--prepare takes exactly one argument" --prepare
bad "--prebuild takes exactly one argument" --prebuild
bad "--tree-hash takes no other argument" --tree-hash "$tmp/o"
[ -e "$tmp/o" ] && fail "a bad command line created OUT_DIR"

# no GPU, existing build: exit 0, says so, and writes both reports
"$script" --no-gpu --no-build --build-dir "$build" "$tmp/rep" >"$tmp/out" 2>&1
rc=$?
[ "$rc" = 0 ] || fail "--no-gpu --no-build: exit $rc: $(cat "$tmp/out")"
grep -q -- "--no-gpu given: GPU parts not run; $build/cgan_gpu is built, nothing else to run" "$tmp/out" ||
  fail "--no-gpu: no 'nothing else to run' line: $(cat "$tmp/out")"
[ -s "$tmp/rep/report.md" ] || fail "no report.md"
grep -q '^- GPU: --no-gpu given' "$tmp/rep/report.md" || fail "report.md does not say there was no GPU: $(cat "$tmp/rep/report.md")"
grep -q '^| build | skipped | 0 | --no-build' "$tmp/rep/report.md" || fail "report.md lacks the skipped build: $(cat "$tmp/rep/report.md")"
python3 - "$tmp/rep/report.json" <<'PY' || fail "report.json: see above"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["gpu"] is False, r
assert r["parts_failed"] == [], r
assert [s["name"] for s in r["steps"]] == ["build"], r["steps"]
PY

# a build folder without cgan_gpu: exit 1, and the report names the part that failed
"$script" --no-gpu --no-build --build-dir "$tmp/empty" "$tmp/rep2" >"$tmp/out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "missing binary: exit $rc, expected 1: $(cat "$tmp/out")"
grep -q '^- failed parts: binary' "$tmp/rep2/report.md" || fail "report.md does not name the failed part: $(cat "$tmp/rep2/report.md")"

# a build packed by --prebuild (here: this build's cgan_gpu standing in for both binaries): used
# instead of building when it was made from this tree, its build folder linked to it
mkdir -p "$tmp/deps/prebuilt/tests"
cp "$build/cgan_gpu" "$tmp/deps/prebuilt/cgan_gpu"
cp "$build/cgan_gpu" "$tmp/deps/prebuilt/tests/cgan_cuda_tests"
hash=$("$script" --tree-hash)
[[ "$hash" =~ ^[0-9a-f]{16}$ ]] || fail "--tree-hash printed '$hash'"
printf 'build_dir=%s\nsource_dir=%s\ntree=%s\nmade=test\n' "$tmp/pb_build" "$src" "$hash" >"$tmp/deps/prebuilt/PATHS"
"$script" --no-gpu --deps "$tmp/deps" "$tmp/rep3" >"$tmp/out" 2>&1
rc=$?
[ "$rc" = 0 ] || fail "prebuilt: exit $rc: $(cat "$tmp/out")"
grep -q "^| build | skipped | 0 | prebuilt by --prebuild (test), tree $hash: $tmp/deps/prebuilt |" "$tmp/rep3/report.md" ||
  fail "prebuilt: report.md does not say the prebuilt binaries were used: $(cat "$tmp/rep3/report.md")"
[ "$(readlink "$tmp/pb_build")" = "$tmp/deps/prebuilt" ] || fail "prebuilt: $tmp/pb_build is not a link to the packed build"
grep -q "$tmp/pb_build/cgan_gpu is built" "$tmp/out" || fail "prebuilt: the check does not use the packed binary: $(cat "$tmp/out")"

[ "$fails" = 0 ] && echo "gpu_check.sh: all checks passed"
exit $((fails > 0))
