#!/usr/bin/env bash
# Fails when a tracked C++ file differs from .clang-format's style. Fix with: clang-format -i FILE
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -- '*.h' '*.hpp' '*.cpp' '*.cc')
if [ ${#files[@]} -eq 0 ]; then echo "check-format: no files"; exit 0; fi
clang-format --dry-run -Werror "${files[@]}"
echo "check-format: ${#files[@]} files formatted"
