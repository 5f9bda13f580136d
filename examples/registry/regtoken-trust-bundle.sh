#!/bin/bash
# Fetches the registry's trust bundle (auth.token.rootcertbundle) from the token bucket and
# restarts the registry only when it changed: registry 2.8 reads the bundle only at start-up.
# In regtoken's default certificate mode the bundle changes only when the signing root is
# rotated, so a restart is rare. A failed or malformed download keeps the current bundle.
#
# Settings (environment; regtoken-trust-bundle.service reads /etc/regtoken/trust-bundle.env):
#   REGTOKEN_TRUST_BUNDLE  s3://TOKEN_BUCKET[/PREFIX]/trust/bundle.pem (required)
#   REGISTRY_BUNDLE        where the registry reads it (default /etc/docker/registry/regtoken-bundle.pem)
#   REGISTRY_UNIT          the registry's systemd unit (default docker-registry.service)
# plus AWS_REGION and the usual AWS CLI settings; credentials from the instance profile.
set -euo pipefail

source_url="${REGTOKEN_TRUST_BUNDLE:?set REGTOKEN_TRUST_BUNDLE=s3://TOKEN_BUCKET/trust/bundle.pem}"
target="${REGISTRY_BUNDLE:-/etc/docker/registry/regtoken-bundle.pem}"
unit="${REGISTRY_UNIT:-docker-registry.service}"

log() { echo "regtoken-trust-bundle: $*" >&2; }

mkdir -p "$(dirname "$target")"
new=$(mktemp "$(dirname "$target")/.regtoken-bundle.XXXXXX")
trap 'rm -f "$new"' EXIT
if ! aws s3 cp --only-show-errors "$source_url" "$new"; then
  log "could not fetch $source_url; keeping the current bundle"
  exit 1
fi
if ! grep -q -- '-----BEGIN CERTIFICATE-----' "$new" || ! openssl x509 -noout -in "$new" 2>/dev/null; then
  log "$source_url is not a PEM certificate bundle; keeping the current bundle"
  exit 1
fi
if [ -f "$target" ] && cmp -s "$new" "$target"; then
  exit 0
fi
chmod 0644 "$new"
mv -f "$new" "$target"
log "installed a new trust bundle in $target; restarting $unit"
systemctl try-restart "$unit"
