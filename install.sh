#!/usr/bin/env bash
# Builds the release binary and installs `kubectl-oidc_login` where kubectl finds plugins
# (a directory on PATH), then runs it through kubectl to prove it is found.
#   INSTALL_DIR=/some/bin ./install.sh   to choose the directory
set -euo pipefail
cd "$(dirname "$0")"

cargo build --release --locked

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
install -m 0755 target/release/kubectl-oidc_login "$INSTALL_DIR/kubectl-oidc_login"
echo "Installed $INSTALL_DIR/kubectl-oidc_login"

if ! on_path "$INSTALL_DIR"; then
  echo "Note: $INSTALL_DIR is not on your PATH; add it, e.g.: export PATH=\"$INSTALL_DIR:\$PATH\"" >&2
  export PATH="$INSTALL_DIR:$PATH"
fi
if command -v kubectl >/dev/null; then
  kubectl plugin list 2>/dev/null | grep -q kubectl-oidc_login \
    && echo "kubectl finds it: kubectl plugin list shows kubectl-oidc_login"
  kubectl oidc-login --version
else
  echo "kubectl is not installed; the plugin also runs on its own:" >&2
  kubectl-oidc_login --version
fi
