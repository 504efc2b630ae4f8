#!/usr/bin/env bash
# Build SeaweedFS's `weed` (the objectstore host's S3 store) from the Go module
# proxy into the cache outside the clone; the objectstore role copies it from
# there to the host (the hosts cannot fetch it themselves). The pin and its
# checksums are the manifest in scripts/seaweedfs (go.mod, go.sum, tools.go).
# Skipped when the binary of the pin is already cached.
#   scripts/build-seaweedfs.sh          build if missing (about 7 min on 2 cores)
#   scripts/build-seaweedfs.sh --path   print the binary's path, build nothing
source "$(dirname "$0")/lib.sh"

MODULE=github.com/seaweedfs/seaweedfs
MANIFEST="$ROOT/scripts/seaweedfs"
PIN=$(awk -v m="$MODULE" '$1 == "require" && $2 == m {print $3}' "$MANIFEST/go.mod")
[ -n "$PIN" ] || die "scripts/seaweedfs/go.mod has no 'require $MODULE <version>' line"
BIN="$CACHE/seaweedfs/$PIN/weed"

case "${1:-}" in
  --path) echo "$BIN"; exit 0 ;;
  "") ;;
  *) die "usage: $0 [--path]" ;;
esac

# One build at a time: make test starts it in the background and make up's artifacts step waits here.
mkdir -p "$CACHE/seaweedfs"
exec 9>"$CACHE/seaweedfs/.build.lock"
flock 9

if [ -x "$BIN" ]; then
  log "seaweedfs: weed $PIN is cached at $BIN ($(du -m "$BIN" | cut -f1) MiB)"
  exit 0
fi

need go "the Go toolchain builds SeaweedFS's weed"
BUILD_LOG="$STATE/seaweedfs-build.log"
: >"$BUILD_LOG"
T0=$SECONDS
progress() { log "seaweedfs: $* ($((SECONDS - T0)) s elapsed)"; }

# The module proxy serves one version of SeaweedFS; name it when it is refused.
progress "step 1/3: checking the module proxy serves $MODULE@$PIN"
if ! (cd "$MANIFEST" && go list -m -json "$MODULE@$PIN") >>"$BUILD_LOG" 2>&1; then
  tail -3 "$BUILD_LOG" >&2
  die "the Go module proxy refused $MODULE@$PIN (the pin in scripts/seaweedfs/go.mod); see $BUILD_LOG"
fi

progress "step 2/3: downloading the modules go.sum lists (first time: several hundred)"
if ! (cd "$MANIFEST" && go mod download) >>"$BUILD_LOG" 2>&1; then
  tail -5 "$BUILD_LOG" >&2
  die "downloading the dependencies of $MODULE@$PIN failed; see $BUILD_LOG"
fi

progress "step 3/3: compiling weed (CGO_ENABLED=0, -trimpath, -ldflags '-s -w'; the long step, ~7 min on 2 cores)"
mkdir -p "$(dirname "$BIN")"
if ! (cd "$MANIFEST" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" "$MODULE/weed") \
     >>"$BUILD_LOG" 2>&1; then
  tail -10 "$BUILD_LOG" >&2
  rm -f "$BIN.tmp"
  die "compiling weed $PIN failed; see $BUILD_LOG"
fi
"$BIN.tmp" version >>"$BUILD_LOG" 2>&1 || die "the built weed does not run; see $BUILD_LOG"
mv "$BIN.tmp" "$BIN"
progress "built $BIN ($(du -m "$BIN" | cut -f1) MiB, $("$BIN" version 2>/dev/null | head -1))"
