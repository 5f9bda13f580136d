#!/usr/bin/env bash
# Runs every test: lint and type check, unit, infra and integration tests.
# The integration tests drive real programs that npm does not install; this script installs the
# Debian packages when they are missing (docker-registry, skopeo, docker.io and containerd for
# the Docker engine, ctr and the CRI, systemd for systemd-analyze) and checks for moto_server
# (pip install 'moto[server]').
# Extra arguments go to jest, e.g. `npm test -- test/unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v dockerd >/dev/null || need+=(docker.io)
{ command -v containerd >/dev/null && command -v ctr >/dev/null; } || need+=(containerd)
command -v systemd-analyze >/dev/null || need+=(systemd)
if ((${#need[@]})); then
  echo "test: installing Debian packages the tests use: ${need[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" ||
    { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}"; }
fi
if ! command -v moto_server >/dev/null; then
  echo "test: moto_server is missing (the local AWS stand-in): pip install 'moto[server]'" >&2
  exit 1
fi

npm run lint
exec node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js "$@"
