#!/usr/bin/env bash
# Runs before the test suite (npm's `pretest`): makes the programs some tests
# talk to available, so that `npm ci && npm test` works on a clean Debian
# machine with only Node.js and npm. Each section checks first and installs
# only what is missing (with apt-get, when run as root, as CI does); anywhere
# else it says what is missing and the tests that need it fail with the same
# advice. It never fails the run itself: the tests report what is absent.
set -u
missing=()
apt_updated=
install () {
  # $1: what for; the rest: Debian packages
  local why=$1; shift
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    missing+=("$* ($why)")
    return 1
  fi
  echo "prereqs: installing $* for $why"
  if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null && apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || { missing+=("$* ($why)"); return 1; }
}

# Chromium: the dashboard's browser test (test/provider/dashboard.test.ts) drives
# Debian's Chromium with playwright-core, never a downloaded browser
[ -x "${CAIRN_CHROMIUM:-/usr/bin/chromium}" ] || install "the dashboard's browser test" chromium

# a C compiler: the native CommP addon (without one the portable engine is tested)
command -v cc >/dev/null 2>&1 || install "the native CommP addon" gcc libc6-dev

# age: Debian's age command, the encryption tests' interop peer (test/crypto/)
command -v age >/dev/null 2>&1 || install "the age interop tests" age

# PostgreSQL: the cluster tests start throwaway servers from its binaries
# (test/helpers/postgres.ts), unless CAIRN_TEST_PG_URL names a server
if [ -z "${CAIRN_TEST_PG_URL:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  install "the cluster tests" postgresql
fi

# the native addon is built by npm ci; build it now if a compiler arrived only now
if command -v cc >/dev/null 2>&1 && ! [ -f proofs/native/build/Release/cairn_commp.node ]; then
  node proofs/native/build.mjs --quiet || true
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "prereqs: missing, so the tests that need them will fail: ${missing[*]}" >&2
fi
exit 0
