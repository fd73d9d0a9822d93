#!/usr/bin/env bash
# System test of `exo gguf-gen` and `exo bench` on a small generated model: the file is written and
# loads; bench reports load time and memory, pp and tg rates and the bandwidth figure for the whole
# model; --layers loads and measures one shard only; --kernels runs the chosen kernel variant or says
# why not; bad input exits 2 with a message.
# Usage: bench_tools_test.sh PATH_TO_EXO
set -u
EXO="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

"$EXO" gguf-gen --type q8_0 --out "$work/demo.gguf" >"$work/gen.out" 2>&1
check "gguf-gen writes the demo model" test -s "$work/demo.gguf"
check "gguf-gen says what it wrote" contains "$work/gen.out" "4 layers, n_embd 256"

"$EXO" bench -m "$work/demo.gguf" -p 8 -n 4 -r 1 --bandwidth-mib 16 >"$work/whole.out" 2>&1
rc=$?
cat "$work/whole.out"
check "bench on the whole model exits 0" test "$rc" -eq 0
check "bench reports the whole model's load" contains "$work/whole.out" "^load: layers 0-3 of 4 \(whole model\): [0-9.]+ ms .*page-in [0-9.]+ ms of 3\.[0-9] MiB\); RSS [0-9.]+ MiB \([0-9.]+ MiB in 2 MiB pages\), peak [0-9.]+ MiB$"
check "bench reports peak memory with the KV caches" contains "$work/whole.out" "^memory: peak RSS [0-9.]+ MiB with the tests' KV caches"
check "bench reports pp8" contains "$work/whole.out" "^\| pp8 \| [0-9.]+ ± [0-9.]+ \|"
check "bench reports tg4 against the bandwidth limit" contains "$work/whole.out" "^\| tg4 \| [0-9.]+ ± [0-9.]+ \| [0-9.]+ ± [0-9.]+% of the bandwidth limit measured after each run"
check "bench probes the bandwidth twice after the one tg run" contains "$work/whole.out" "^memory read bandwidth: [0-9.]+ GB/s \(best of 2 passes over 16 MiB"

"$EXO" bench -m "$work/demo.gguf" --layers 1-2 >"$work/shard.out" 2>&1
rc=$?
cat "$work/shard.out"
check "bench on a shard exits 0" test "$rc" -eq 0
check "bench loads only the shard" contains "$work/shard.out" "^load: layers 1-2 of 4: .*of 1\.[0-9] MiB\)"
check "bench says pp and tg need the whole model" contains "$work/shard.out" "whole model only"
check "bench on a shard runs no test" bash -c "! grep -q '^| pp' '$work/shard.out'"

for bad in "3-x" "2-1" "0-4" "-1-2" "5"; do
  "$EXO" bench -m "$work/demo.gguf" --layers "$bad" >"$work/bad.out" 2>&1
  rc=$?
  check "--layers '$bad' exits 2" test "$rc" -eq 2
  check "--layers '$bad' is explained" contains "$work/bad.out" "expected START-END"
done
"$EXO" bench -m "$work/demo.gguf" -p 8 -n 0 -r 1 --kernels portable >"$work/portable.out" 2>&1
check "bench --kernels portable exits 0" test $? -eq 0
check "bench runs the chosen kernels" contains "$work/portable.out" "^threads: [0-9]+, kernels: portable, KV cache: f16$"
"$EXO" bench -m "$work/demo.gguf" -p 8 -n 0 -r 1 --kernels avx512-vnni >"$work/avx512.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then
  check "bench --kernels avx512-vnni runs them on this CPU" contains "$work/avx512.out" "kernels: avx512-vnni,"
else
  check "bench --kernels avx512-vnni on a CPU without it exits 2" test "$rc" -eq 2
  check "bench says the CPU cannot run them, and what it runs" contains "$work/avx512.out" "this CPU cannot run the avx512-vnni kernels \(it runs: portable"
fi
"$EXO" bench -m "$work/demo.gguf" --kernels fastest >"$work/badkernels.out" 2>&1
check "an unknown --kernels exits 2" test $? -eq 2
"$EXO" bench -m "$work/missing.gguf" >"$work/missing.out" 2>&1
check "a missing model file exits 2" test $? -eq 2

echo "bench tools: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
