#!/usr/bin/env bash
# Runs a command with a real, unlocked Secret Service (gnome-keyring) on the current D-Bus
# session. Its keyrings live in a throwaway XDG_DATA_HOME: a keyring created with another
# password would stay locked and make every write ask for a GUI prompt.
set -euo pipefail
export XDG_DATA_HOME="$(mktemp -d)"
trap 'rm -rf "$XDG_DATA_HOME"' EXIT
echo -n "test-keyring-password" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
"$@"
