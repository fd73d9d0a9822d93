# Check helpers of the shell system tests (sourced, not run): `check NAME COMMAND...` runs COMMAND,
# prints "ok   NAME" or "FAIL NAME" and counts it in `passed` / `failed`; `contains FILE REGEX` is an
# extended-regex grep for use with check.
passed=0
failed=0

check() {  # check NAME COMMAND...
  local name="$1"; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

contains() { grep -Eq -- "$2" "$1"; }
