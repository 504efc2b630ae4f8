#!/usr/bin/env bash
# Build the kreuzwerker/docker Terraform provider from the Go module proxy
# (the Terraform registry is unreachable) into a filesystem mirror in the cache,
# and write the CLI config that points `terraform init` at it. Rebuilt only when
# terraform/provider/go.mod or go.sum (the pin) changes.
source "$(dirname "$0")/lib.sh"

VERSION=4.6.0
PROV_DIR="$ROOT/terraform/provider"
MIRROR="$CACHE/terraform-plugins"
BIN="$MIRROR/registry.terraform.io/kreuzwerker/docker/$VERSION/linux_amd64/terraform-provider-docker_v$VERSION"
STAMP="$BIN.pin"
pin_hash=$(hash_of "$PROV_DIR/go.mod" "$PROV_DIR/go.sum")

if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$pin_hash" ]; then
  log "provider: kreuzwerker/docker $VERSION is current (pin $pin_hash)"
else
  need go "the Go toolchain builds the docker provider"
  pin=$(awk '/=> github.com\/kreuzwerker/ {print $NF}' "$PROV_DIR/go.mod")
  log "provider: building kreuzwerker/docker $VERSION from github.com/kreuzwerker/terraform-provider-docker $pin (about 2-4 min on 2 cores)"
  mkdir -p "$(dirname "$BIN")"
  if ! (cd "$PROV_DIR" && GOFLAGS=-mod=mod go build -trimpath -o "$BIN.tmp" \
        github.com/terraform-providers/terraform-provider-docker) >"$STATE/provider-build.log" 2>&1; then
    tail -5 "$STATE/provider-build.log" >&2
    latest=$(cd /tmp && go list -m -json github.com/kreuzwerker/terraform-provider-docker@latest 2>/dev/null \
             | awk -F'"' '/"Version"/ {print $4}')
    die "building the provider at pin $pin failed (see $STATE/provider-build.log); the module proxy resolves @latest to '${latest:-nothing}': update the replace line in terraform/provider/go.mod"
  fi
  mv "$BIN.tmp" "$BIN"
  echo "$pin_hash" >"$STAMP"
fi

cat >"$STATE/terraformrc" <<EOC
provider_installation {
  filesystem_mirror {
    path    = "$MIRROR"
    include = ["registry.terraform.io/kreuzwerker/docker"]
  }
  direct {
    exclude = ["registry.terraform.io/kreuzwerker/docker"]
  }
}
EOC
