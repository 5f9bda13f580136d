#!/usr/bin/env bash
# Runs every test: lint and type check, unit, infra and integration tests.
# The integration tests drive real programs that npm does not install; this script installs the
# Debian packages when they are missing (docker-registry, skopeo, docker.io and containerd for
# the Docker engine, ctr and the CRI, systemd for systemd-analyze), checks for the Python tools
# moto_server (pip install 'moto[server]'), cfn-lint (pip install cfn-lint) and the AWS CLI
# (pip install awscli; the config repository workflow's upload uses it), and installs the Node.js
# of the Lambda runtime (the npm package node-<platform>-<arch>) into node_modules/.cache.
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
missing=()
command -v moto_server >/dev/null || missing+=("moto_server (the local AWS stand-in): pip install 'moto[server]'")
command -v cfn-lint >/dev/null || missing+=("cfn-lint (lints the synthesized templates): pip install cfn-lint")
command -v aws >/dev/null || missing+=("aws (the AWS CLI, as on GitHub's runners): pip install awscli")
if ((${#missing[@]})); then
  printf 'test: missing %s\n' "${missing[@]}" >&2
  exit 1
fi

# The Node.js the function runs on in Lambda (nodejs22.x in infra/minter/function.ts; the test
# that runs the bundle checks that the majors agree), the official binary from npm.
lambda_node_version=22.23.5
lambda_node=node_modules/.cache/lambda-node
lambda_node_package="node-$(node -p 'process.platform + "-" + process.arch')"
if [ "$("$lambda_node/node_modules/$lambda_node_package/bin/node" --version 2>/dev/null)" != "v$lambda_node_version" ]; then
  echo "test: installing the Lambda runtime's Node.js: $lambda_node_package@$lambda_node_version"
  npm install --prefix "$lambda_node" --no-save --no-package-lock --no-audit --no-fund \
    "$lambda_node_package@$lambda_node_version" >/dev/null
fi

npm run lint
# The built commands (dist/bin/), as the package ships them: the tests run them through real
# clients (Docker, skopeo, a kubelet's provider call), so they are built from this source first.
npm run build >/dev/null
exec node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js "$@"
