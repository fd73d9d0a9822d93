#!/usr/bin/env bash
# System test of `exo eval` and `exo tokenize` against the golden files of ../shared/models:
# every model's prompt logits (written with --logits-out) within the README tolerance, its 32 greedy
# ids (F32/F16 files: exactly; quantized: the first id, and the logits with every kernel variant the
# CPU runs, `--kernels`, the x86 SIMD variants' identical to AVX2's), every tokenizer vector file, and the exit
# codes of bad input. Skips (exit 77, message) when the shared directory is absent.
# Usage: model_tools_test.sh PATH_TO_EXO [SHARED_MODELS_DIR]
set -u
EXO="$1"
MODELS="${2:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/models}"
if [ ! -d "$MODELS" ]; then echo "SKIP: $MODELS not found"; exit 77; fi
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to compare logits"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
# Prints the input ids stored in a .logits.bin.
golden_tokens() {
  python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(); n=struct.unpack_from("<i",d,0)[0]; print(" ".join(str(v) for v in struct.unpack_from("<%di"%n,d,8)))' "$1"
}

# compare_logits GOLDEN OURS MAX_ABS MEAN_ABS
compare_logits() {
  python3 - "$@" <<'PY'
import struct, sys
def load(path):
    d = open(path, "rb").read()
    n, v = struct.unpack_from("<ii", d, 0)
    ids = struct.unpack_from("<%di" % n, d, 8)
    logits = struct.unpack_from("<%df" % (n * v), d, 8 + 4 * n)
    return n, v, ids, logits
g, o = load(sys.argv[1]), load(sys.argv[2])
if g[:3] != o[:3]:
    print("header or ids differ"); sys.exit(1)
diffs = [abs(a - b) for a, b in zip(g[3], o[3])]
mx, mean = max(diffs), sum(diffs) / len(diffs)
print("  max abs %.3g, mean abs %.3g" % (mx, mean))
sys.exit(0 if mx <= float(sys.argv[3]) and mean <= float(sys.argv[4]) else 1)
PY
}

for golden in "$MODELS"/*.logits.bin; do
  model="${golden%.logits.bin}"
  name=$(basename "$model")
  case "$name" in small-q*) max=0.15; mean=0.03; quantized=1 ;; *) max=1e-3; mean=1e-3; quantized=0 ;; esac
  tokens=$(golden_tokens "$golden")
  check "$name eval --logits-out" "$EXO" eval --model "$model.gguf" --tokens "$tokens" -t 2 --logits-out "$work/$name.bin"
  check "$name logits within $max" compare_logits "$golden" "$work/$name.bin" "$max" "$mean"
  # Every kernel variant this CPU runs (--kernels) meets the same tolerance; the others are refused.
  if [ "$quantized" = 1 ]; then
    for variant in portable avx2 avx-vnni avx512-vnni vnni-emulated amx amx-emulated; do
      "$EXO" eval --kernels "$variant" --model "$model.gguf" --tokens "$tokens" -t 2 \
        --logits-out "$work/$name.$variant.bin" >"$work/variant.out" 2>&1
      rc=$?
      if [ "$rc" -eq 2 ] && grep -q "this CPU cannot run the $variant kernels" "$work/variant.out"; then
        echo "  ($variant: not on this CPU)"
        continue
      fi
      check "$name eval --kernels $variant exits 0" test "$rc" -eq 0
      check "$name --kernels $variant logits within $max" compare_logits "$golden" "$work/$name.$variant.bin" "$max" "$mean"
    done
    # The x86 SIMD variants compute bit-identical logits; a 48-token prompt (the golden one 4 times)
    # also takes the AMX kernels' tiles of 16 tokens.
    long_tokens="$tokens $tokens $tokens $tokens"
    if "$EXO" eval --kernels avx2 --model "$model.gguf" --tokens "$long_tokens" -t 2 \
      --logits-out "$work/$name.long.avx2.bin" >/dev/null 2>&1; then
      for variant in avx-vnni avx512-vnni vnni-emulated amx amx-emulated; do
        "$EXO" eval --kernels "$variant" --model "$model.gguf" --tokens "$long_tokens" -t 2 \
          --logits-out "$work/$name.long.$variant.bin" >"$work/variant.out" 2>&1
        rc=$?
        if [ "$rc" -eq 2 ] && grep -q "this CPU cannot run the $variant kernels" "$work/variant.out"; then continue; fi
        check "$name 48 tokens: --kernels $variant logits identical to avx2's" \
          cmp "$work/$name.long.avx2.bin" "$work/$name.long.$variant.bin"
      done
    else
      echo "  (48 tokens: this CPU cannot run avx2)"
    fi
  fi
  greedy=$("$EXO" eval --model "$model.gguf" --tokens "$tokens" --greedy 32 -t 2)
  expected=$(cat "$model.greedy.txt")
  if [ "$quantized" = 1 ]; then
    check "$name greedy (first id)" test "${greedy%% *}" = "${expected%% *}"
  else
    check "$name greedy 32 ids" test "$greedy" = "$expected"
  fi
done

for inp in "$MODELS"/*.gguf.inp; do
  vocab="${inp%.inp}"
  name=$(basename "$vocab")
  # Split the .inp on the separator line and tokenize each string, one output line per string.
  python3 - "$inp" "$work/$name.strings" <<'PY'
import os, sys
data = open(sys.argv[1], "rb").read()
sep = b"\n__ggml_vocab_test__\n"
os.makedirs(sys.argv[2], exist_ok=True)
pos, i = 0, 0
while pos < len(data):
    end = data.find(sep, pos)
    if end < 0: end = len(data)
    open(os.path.join(sys.argv[2], "%04d" % i), "wb").write(data[pos:end])
    pos, i = end + len(sep), i + 1
PY
  : > "$work/$name.out"
  for s in "$work/$name.strings"/*; do
    ids=$("$EXO" tokenize --model "$vocab" --file "$s") || ids="ERROR"
    if [ -n "$ids" ]; then echo " $ids" >> "$work/$name.out"; else echo "" >> "$work/$name.out"; fi
  done
  check "$name tokenize vectors" cmp -s "$work/$name.out" "$vocab.out"
done
printf 'Hello world' | "$EXO" tokenize --model "$MODELS/ggml-vocab-llama-spm.gguf" > "$work/stdin.out"
check "tokenize reads stdin" test "$(cat "$work/stdin.out")" = "15043 3186"

"$EXO" eval --model "$MODELS/stories260K.gguf" --tokens "1 x 3" >/dev/null 2>"$work/err"; code=$?
check "eval bad --tokens exits 2" test "$code" = 2
check "eval bad --tokens explains" grep -q "tokens" "$work/err"
"$EXO" eval --model "$work/none.gguf" --tokens "1" >/dev/null 2>"$work/err"; code=$?
check "eval missing model exits 1" test "$code" = 1
"$EXO" eval --model "$MODELS/ggml-vocab-gpt-2.gguf" --tokens "1" >/dev/null 2>"$work/err"; code=$?
check "eval on a vocab-only file exits 1" test "$code" = 1
check "eval on a vocab-only file explains" grep -q "unsupported architecture 'gpt2'\|missing" "$work/err"
"$EXO" eval --model "$MODELS/stories260K.gguf" --tokens "1 99999" >/dev/null 2>"$work/err"; code=$?
check "eval id outside the vocabulary exits 2" test "$code" = 2

echo "model tools: $passed passed, $failed failed"
[ "$failed" = 0 ]
