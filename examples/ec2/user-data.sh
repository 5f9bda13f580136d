#!/bin/bash
# EC2 user data: installs regtoken, logs this instance in to the registry, and keeps it logged
# in (regtoken-login.service + regtoken-login.timer). Put it in the launch template of an Auto
# Scaling group and set the three values below. See docs/client.md for the whole flow.
#
# The instance profile's role must be named in the grants file and may read its own token
# (RegistryTokenMinter.grantReadOwnToken, or s3:GetObject on TOKEN_BUCKET/tokens/*).
# The AMI needs Node.js 20.19 or newer as `node`, with npm; curl; systemd; and the AWS CLI when
# the package is on S3 (Amazon Linux 2023 ships all of these but Node.js: bake it in).
set -euo pipefail

# --- Settings ------------------------------------------------------------------------------
# The token bucket (and prefix) of the regtoken deployment.
REGTOKEN_FROM="${REGTOKEN_FROM:-s3://TOKEN_BUCKET}"
# The registry host in the grants file (registry.host); login refuses a token for another one.
REGTOKEN_REGISTRY="${REGTOKEN_REGISTRY:-registry.example.com}"
# The regtoken package made by `npm pack` in a checkout, on S3 (read with the instance
# profile) or HTTPS.
REGTOKEN_PACKAGE="${REGTOKEN_PACKAGE:-s3://ARTIFACT_BUCKET/regtoken/regtoken-0.1.0.tgz}"
# Whose Docker config gets the token: root's (for `sudo docker`, systemd units, ECS agent…).
DOCKER_CONFIG_DIR="${DOCKER_CONFIG_DIR:-/root/.docker}"
# -------------------------------------------------------------------------------------------

# Tests install under a scratch root and ask a stand-in for the instance metadata service.
ROOT="${REGTOKEN_ROOT:-}"
IMDS="${REGTOKEN_IMDS:-http://169.254.169.254}"
PREFIX="$ROOT/usr/local"

log() { echo "regtoken user-data: $*" >&2; }

# The instance's region, read once (IMDSv2): the AWS CLI needs it for the download, and the
# env file records it (the AWS SDK in regtoken would also find it by itself).
imds_token=$(curl -fsS --retry 5 -X PUT "$IMDS/latest/api/token" \
  -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
region=$(curl -fsS --retry 5 -H "X-aws-ec2-metadata-token: $imds_token" \
  "$IMDS/latest/meta-data/placement/region")

if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number);
  process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null; then
  log "Node.js 20.19 or newer is required (found: $(node --version 2>/dev/null || echo none))"
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case "$REGTOKEN_PACKAGE" in
  s3://*) AWS_REGION="$region" aws s3 cp --only-show-errors "$REGTOKEN_PACKAGE" "$work/regtoken.tgz" ;;
  *) curl -fsSL --retry 5 -o "$work/regtoken.tgz" "$REGTOKEN_PACKAGE" ;;
esac
npm install --global --prefix "$PREFIX" --omit=dev --no-audit --no-fund "$work/regtoken.tgz"
package="$PREFIX/lib/node_modules/regtoken"
log "installed $("$PREFIX/bin/regtoken" --version)"

install -d -m 0755 "$ROOT/etc/regtoken"
cat >"$ROOT/etc/regtoken/env" <<EOF
# Written by the regtoken user data; read by regtoken-login.service.
REGTOKEN_FROM=$REGTOKEN_FROM
REGTOKEN_REGISTRY=$REGTOKEN_REGISTRY
AWS_REGION=$region
DOCKER_CONFIG=$DOCKER_CONFIG_DIR
EOF
install -d -m 0700 "$ROOT$DOCKER_CONFIG_DIR"
install -d -m 0755 "$ROOT/etc/systemd/system"
install -m 0644 "$package/examples/ec2/regtoken-login.service" \
  "$package/examples/ec2/regtoken-login.timer" "$ROOT/etc/systemd/system/"

systemctl daemon-reload
systemctl enable regtoken-login.service regtoken-login.timer
systemctl start regtoken-login.timer
# The first login, now. If it fails (e.g. the instance role is not granted yet), the service
# retries every 30 s a few times, then the timer every 10 to 15 minutes: see
# `journalctl -u regtoken-login`. Units that pull images at boot should be ordered
# After=regtoken-login.service.
systemctl start regtoken-login.service || log "first login failed; it will be retried: journalctl -u regtoken-login"
