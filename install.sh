#!/usr/bin/env bash
# Builds the release binary and installs `kubectl-oidc_login` where kubectl finds plugins
# (a directory on PATH), then runs it through kubectl to prove it is found.
#   INSTALL_DIR=/some/bin ./install.sh   to choose the directory
set -euo pipefail
cd "$(dirname "$0")"

# A static (musl) binary on every Linux where one can be built: no dynamic loader at start-up
# (a cache hit is faster than `cat`), and it runs on any Linux of the same architecture
# (Alpine, distroless, old glibc). ring's C code needs a compiler: musl-gcc (Debian:
# musl-tools) when present, else the system's cc, which builds it for musl just as well. The
# host build only where a static one cannot be made, and then the reason is printed.
# Where cargo puts what it builds: CARGO_TARGET_DIR, build.target-dir in a cargo config, or
# target/; `cargo metadata` knows which (a binary left in target/ by an earlier build must not
# be taken for this one).
target_dir() {
  local json
  json="$(cargo metadata --format-version 1 --no-deps 2>/dev/null)" || return 1
  if command -v jq >/dev/null; then
    jq -er .target_directory <<<"$json"
  elif command -v python3 >/dev/null; then
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' <<<"$json"
  else
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p' <<<"$json"
  fi
}
target="$(target_dir)" && [[ -n "$target" ]] || target=target
binary="$target/release/kubectl-oidc_login"
musl="$(uname -m)-unknown-linux-musl"
static_build() { # prints why not on failure
  [[ "$(uname -s)" == Linux ]] || { echo "this is $(uname -s), not Linux"; return 1; }
  local cc
  cc="$(command -v musl-gcc || command -v cc || command -v gcc)" ||
    { echo "no C compiler for ring (install gcc or musl-tools)"; return 1; }
  if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    command -v rustup >/dev/null || { echo "no rustup to add the $musl target"; return 1; }
    local out
    out="$(rustup target add "$musl" 2>&1)" ||
      { echo "rustup target add $musl failed: $(tail -n1 <<<"$out")"; return 1; }
  fi
  echo "Building a static binary ($musl, C compiler $cc)" >&2
  env "CC_${musl//-/_}=$cc" cargo build --release --locked --target "$musl" >&2 ||
    { echo "cargo build --target $musl failed (output above)"; return 1; }
  "$target/$musl/release/kubectl-oidc_login" --version >/dev/null 2>&1 ||
    { echo "the $musl binary does not run here"; return 1; }
}
if why="$(static_build)"; then
  binary="$target/$musl/release/kubectl-oidc_login"
  echo "Built a static binary ($musl)"
else
  echo "Building for this host instead of a static binary: $why" >&2
  cargo build --release --locked
fi

on_path() { case ":$PATH:" in *":$1:"*) return 0 ;; *) return 1 ;; esac; }
if [[ -z "${INSTALL_DIR:-}" ]]; then
  for dir in "$HOME/.local/bin" "$HOME/.cargo/bin" /usr/local/bin; do
    if on_path "$dir" && { [[ -w "$dir" ]] || [[ ! -e "$dir" && -w "$(dirname "$dir")" ]]; }; then
      INSTALL_DIR="$dir"
      break
    fi
  done
  INSTALL_DIR="${INSTALL_DIR:-$HOME/.local/bin}"
fi
mkdir -p "$INSTALL_DIR"
install -m 0755 "$binary" "$INSTALL_DIR/kubectl-oidc_login"
# kubectl 1.26+ completes `kubectl oidc-login …` through this script beside the plugin.
install -m 0755 completion/kubectl_complete-oidc_login "$INSTALL_DIR/kubectl_complete-oidc_login"
echo "Installed $INSTALL_DIR/kubectl-oidc_login and kubectl_complete-oidc_login"

# Completions for the binary run on its own, and the man page, in the per-user places the
# shells and man look (XDG_DATA_HOME, default ~/.local/share).
bin="$INSTALL_DIR/kubectl-oidc_login"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
install_generated() { # FILE COMMAND...
  mkdir -p "$(dirname "$1")"
  local file="$1"; shift
  "$@" >"$file.tmp" && mv "$file.tmp" "$file"
}
install_generated "$data/bash-completion/completions/kubectl-oidc_login" "$bin" completion bash
install_generated "$data/zsh/site-functions/_kubectl-oidc_login" "$bin" completion zsh
install_generated "${XDG_CONFIG_HOME:-$HOME/.config}/fish/completions/kubectl-oidc_login.fish" "$bin" completion fish
# The main page and one per subcommand (kubectl-oidc_login-get-token.1, ...), which it names.
mkdir -p "$data/man/man1" && "$bin" man --dir "$data/man/man1"
echo "Installed completions (bash, zsh, fish) and the man pages under $data"
echo "  zsh: add \"fpath+=($data/zsh/site-functions)\" before compinit in ~/.zshrc if it is not there"
echo "  kubectl completion of \"kubectl oidc-login\" works with: source <(kubectl completion bash|zsh)"

if ! on_path "$INSTALL_DIR"; then
  echo "Note: $INSTALL_DIR is not on your PATH; add it, e.g.: export PATH=\"$INSTALL_DIR:\$PATH\"" >&2
  export PATH="$INSTALL_DIR:$PATH"
fi
if command -v kubectl >/dev/null; then
  # kubectl exits non-zero on warnings such as another kubectl-oidc_login earlier on PATH;
  # show those, since kubectl would run the other one.
  plugins="$(kubectl plugin list 2>&1 || true)"
  if grep -q "$INSTALL_DIR/kubectl-oidc_login" <<<"$plugins"; then
    echo "kubectl finds it: kubectl plugin list shows $INSTALL_DIR/kubectl-oidc_login"
  fi
  grep -i "warning" <<<"$plugins" >&2 || true
  kubectl oidc-login --version
else
  echo "kubectl is not installed; the plugin also runs on its own:" >&2
  kubectl-oidc_login --version
fi
