# Shared by the shell tests (sourced): a failure is one line on stderr and exit 1; a wait is a
# bounded poll with a deadline, never a sleep standing in for synchronisation.
fail() { echo "FAIL: $*" >&2; exit 1; }
# until_true SECONDS CMD...: polls CMD every 50 ms until it succeeds or the deadline passes.
until_true() {
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
