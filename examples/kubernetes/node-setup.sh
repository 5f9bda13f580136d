#!/bin/bash
# Kubernetes node set-up: installs regtoken and makes regtoken-credential-provider the kubelet's
# image credential provider for the registry, so that pods pull its images with the token of the
# node's instance role: no image pull secret, nothing to renew. See docs/client.md,
# "Kubernetes nodes". Run it as root before the kubelet starts:
#
# - EKS nodes on the Amazon Linux 2023 EKS AMI (managed node groups with a launch template, and
#   self-managed nodes): in the user data, as a text/x-shellscript part. nodeadm writes the
#   kubelet's /etc/eks/image-credential-provider/config.json before the user data runs
#   (nodeadm-config.service, Before=cloud-init) and starts the kubelet after it
#   (nodeadm-run.service, After=cloud-final), so this adds regtoken's provider next to
#   ecr-credential-provider in that file and directory.
# - Other nodes: set KUBELET_PROVIDER_DIR and KUBELET_PROVIDER_CONFIG to the kubelet's
#   --image-credential-provider-bin-dir and --image-credential-provider-config; when the config
#   file does not exist yet it is written with regtoken's provider alone.
#
# The node role must be named in the grants file and may read its own token (s3:GetObject on
# TOKEN_BUCKET/tokens/ACCOUNT/role/NODE_ROLE.json) and the package below. The node needs Node.js
# 20.19 or newer as `node` with npm on the kubelet's PATH, curl, and the AWS CLI when the package
# is on S3 (bake Node.js into the AMI). The region comes from the instance metadata.
set -euo pipefail

# --- Settings ------------------------------------------------------------------------------
# The token bucket (and prefix) of the regtoken deployment.
REGTOKEN_FROM="${REGTOKEN_FROM:-s3://TOKEN_BUCKET}"
# The registry host in the grants file (registry.host): the provider answers for it alone.
REGTOKEN_REGISTRY="${REGTOKEN_REGISTRY:-registry.example.com}"
# The regtoken package made by `npm pack` in a checkout, on S3 (read with the node role) or HTTPS.
REGTOKEN_PACKAGE="${REGTOKEN_PACKAGE:-s3://ARTIFACT_BUCKET/regtoken/regtoken-0.1.0.tgz}"
# The kubelet's provider bin dir and provider config (the EKS AMI's by default).
KUBELET_PROVIDER_DIR="${KUBELET_PROVIDER_DIR:-/etc/eks/image-credential-provider}"
KUBELET_PROVIDER_CONFIG="${KUBELET_PROVIDER_CONFIG:-$KUBELET_PROVIDER_DIR/config.json}"
# -------------------------------------------------------------------------------------------

# Tests install under a scratch root and ask a stand-in for the instance metadata service.
ROOT="${REGTOKEN_ROOT:-}"
IMDS="${REGTOKEN_IMDS:-http://169.254.169.254}"
PREFIX="$ROOT/usr/local"

log() { echo "regtoken node-setup: $*" >&2; }

if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number);
  process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null; then
  log "Node.js 20.19 or newer is required (found: $(node --version 2>/dev/null || echo none))"
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case "$REGTOKEN_PACKAGE" in
  s3://*)
    # The AWS CLI needs a region to download; read the instance's once (IMDSv2).
    imds_token=$(curl -fsS --retry 5 -X PUT "$IMDS/latest/api/token" \
      -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
    region=$(curl -fsS --retry 5 -H "X-aws-ec2-metadata-token: $imds_token" \
      "$IMDS/latest/meta-data/placement/region")
    AWS_REGION="$region" aws s3 cp --only-show-errors "$REGTOKEN_PACKAGE" "$work/regtoken.tgz"
    ;;
  *) curl -fsSL --retry 5 -o "$work/regtoken.tgz" "$REGTOKEN_PACKAGE" ;;
esac
npm install --global --prefix "$PREFIX" --omit=dev --no-audit --no-fund "$work/regtoken.tgz"
log "installed $("$PREFIX/bin/regtoken-credential-provider" --version)"

# The kubelet runs a provider by its name from the bin dir: link the installed command there.
install -d -m 0755 "$ROOT$KUBELET_PROVIDER_DIR"
ln -sfn "$PREFIX/bin/regtoken-credential-provider" "$ROOT$KUBELET_PROVIDER_DIR/regtoken-credential-provider"

# Add (or replace) regtoken's entry in the provider config, keeping every other provider. The
# file is JSON (as nodeadm writes it); it is replaced in one rename.
config="$ROOT$KUBELET_PROVIDER_CONFIG"
install -d -m 0755 "$(dirname "$config")"
CONFIG="$config" REGTOKEN_FROM="$REGTOKEN_FROM" REGTOKEN_REGISTRY="$REGTOKEN_REGISTRY" node -e '
  const fs = require("node:fs");
  const file = process.env.CONFIG;
  let config = { apiVersion: "kubelet.config.k8s.io/v1", kind: "CredentialProviderConfig", providers: [] };
  if (fs.existsSync(file)) {
    try {
      config = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
      console.error(`regtoken node-setup: ${file} is not JSON: add the provider of examples/kubernetes/credential-provider-config.yaml to it by hand`);
      process.exit(1);
    }
  }
  const entry = {
    name: "regtoken-credential-provider",
    matchImages: [process.env.REGTOKEN_REGISTRY],
    defaultCacheDuration: "10m0s",
    apiVersion: "credentialprovider.kubelet.k8s.io/v1",
    env: [
      { name: "REGTOKEN_FROM", value: process.env.REGTOKEN_FROM },
      { name: "REGTOKEN_REGISTRY", value: process.env.REGTOKEN_REGISTRY },
      { name: "XDG_CACHE_HOME", value: "/var/cache" },
    ],
  };
  const others = (config.providers ?? []).filter((p) => p.name !== entry.name);
  config.providers = [...others, entry];
  fs.writeFileSync(`${file}.regtoken`, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o644 });
  fs.renameSync(`${file}.regtoken`, file);
'
log "the kubelet asks regtoken-credential-provider for $REGTOKEN_REGISTRY ($KUBELET_PROVIDER_CONFIG)"
