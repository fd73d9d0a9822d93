#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over the given sources, or over src/resource by default, using the
# compile commands of a configured build (default build/debug: run `cmake --preset debug` first).
# clang 14 does not detect C++20 coroutine support with libstdc++ on its own, hence the two defines.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build/debug}"
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(git ls-files 'src/resource/*.cpp'); fi
clang-tidy -p "$build" --quiet \
  --extra-arg=-DASIO_HAS_CO_AWAIT=1 --extra-arg=-DASIO_HAS_STD_COROUTINE=1 \
  --extra-arg=-Wno-unknown-warning-option "${files[@]}"
