#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan) and fuzzes each one
# for a bounded time, starting from a copy of its checked-in corpus with its
# dictionary. Fails on the first crash, leak, timeout or failed check.
#   test/fuzz/run.sh BUILD_DIR [SECONDS]    (SECONDS per target, default 30)
#   test/fuzz/run.sh --build-only BUILD_DIR (configure and build, no fuzzing)
# Environment: FUZZ_TARGETS="fuzz_sse fuzz_units" to run only some;
# FUZZ_ARGS to pass more libFuzzer flags (e.g. "-runs=10000000").
# Findings (crash-*, leak-*, timeout-*) are kept in BUILD_DIR/fuzz-out/.
set -eu
cd "$(dirname "$0")/../.."

build_only=0
if [ "${1:-}" = --build-only ]; then
  build_only=1
  shift
fi
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
build=$1
seconds=${2:-30}
targets=${FUZZ_TARGETS:-"fuzz_request fuzz_coindesk fuzz_sse fuzz_units fuzz_redis fuzz_state"}

if [ ! -f "$build/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 meson setup "$build" -Dfuzz=true \
    -Db_sanitize=address,undefined -Db_lundef=false --wrap-mode=nodownload
elif ! meson introspect "$build" --buildoptions \
    | python3 -c 'import json,sys; o={x["name"]:x["value"] for x in json.load(sys.stdin)}; sys.exit(0 if o["fuzz"] else 1)'; then
  echo "test/fuzz/run.sh: $build is not configured with -Dfuzz=true" >&2
  exit 2
fi
# Regenerates first when a meson.build changed, so that a target added since
# the setup is known; then only the fuzz targets: the rest of the project is
# not needed here.
ninja -C "$build" build.ninja >/dev/null
meson compile -C "$build" $targets
[ "$build_only" -eq 1 ] && exit 0

out="$build/fuzz-out"
mkdir -p "$out"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
for t in $targets; do
  corpus="$out/$t.corpus"
  rm -rf "$corpus"
  mkdir -p "$corpus"
  cp test/fuzz/corpus/"$t"/* "$corpus"/
  # Inputs up to 24 KiB for requests (past the 8 KiB head and the 16 KiB
  # body limits), 4 KiB for the others.
  max_len=4096
  [ "$t" = fuzz_request ] && max_len=24576
  printf '\n==> %s: %s s\n' "$t" "$seconds"
  # One process at a time (-jobs/-workers unset); a 10 s time-out per input
  # and 2 GiB of RSS are findings too. -print_final_stats gives the
  # executions and the rate.
  # shellcheck disable=SC2086
  if ! "$build/test/fuzz/$t" "$corpus" \
      -dict=test/fuzz/dict/"$t".dict \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len="$max_len" -print_final_stats=1 \
      -artifact_prefix="$out/$t-" ${FUZZ_ARGS:-} \
      >"$out/$t.log" 2>&1; then
    tail -n 60 "$out/$t.log" >&2
    echo "test/fuzz/run.sh: $t failed; inputs: $out/$t-*" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
    "$out/$t.log" || true
done
printf '\ntest/fuzz/run.sh: %s fuzzed %s s each, no crash\n' "$targets" "$seconds"
