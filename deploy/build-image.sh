#!/usr/bin/env bash
# Builds the container image zonesweep:local (or TAG) FROM scratch, with no
# registry: the release binary, the shared libraries `ldd` names and the
# dynamic loader, copied into a build context in a temporary folder. The
# image runs as user 65534 (nobody) and has a writable /data for the
# coordinator's database.
#
#   deploy/build-image.sh                 # zonesweep:local
#   deploy/build-image.sh zonesweep:1.0
#
# ZONESWEEP_BIN=path skips the cargo build and packs that binary instead.
# A conventional multi-stage build for machines with a registry is in
# deploy/Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${1:-zonesweep:local}
say() { printf '[build-image] %s\n' "$*"; }

if [ -n "${ZONESWEEP_BIN:-}" ]; then
  BIN=$ZONESWEEP_BIN
else
  say "cargo build --release --locked --bin zonesweep"
  cargo build --release --locked --bin zonesweep
  BIN=${CARGO_TARGET_DIR:-target}/release/zonesweep
fi
[ -x "$BIN" ] || { echo "build-image: no executable at $BIN" >&2; exit 1; }

CONTEXT=$(mktemp -d /tmp/zonesweep-image.XXXXXX)
trap 'rm -rf "$CONTEXT"' EXIT

mkdir -p "$CONTEXT/root/usr/local/bin" "$CONTEXT/root/tmp" "$CONTEXT/root/etc" "$CONTEXT/data"
cp "$BIN" "$CONTEXT/root/usr/local/bin/zonesweep"
strip "$CONTEXT/root/usr/local/bin/zonesweep" 2>/dev/null || true

# Every library the binary links, and the loader (the line with no "=>"),
# at the same absolute paths as on this machine, symlinks resolved.
libraries=$(ldd "$BIN" | awk '/=> \// { print $3 } /^\t\// { print $1 }')
[ -n "$libraries" ] || { echo "build-image: ldd names no libraries for $BIN (a static binary needs none; remove this check)" >&2; exit 1; }
for lib in $libraries; do
  mkdir -p "$CONTEXT/root$(dirname "$lib")"
  cp -L "$lib" "$CONTEXT/root$lib"
done
# The loader is also looked up through the ELF interpreter path.
interpreter=$(readelf -l "$BIN" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
if [ -n "$interpreter" ] && [ ! -e "$CONTEXT/root$interpreter" ]; then
  mkdir -p "$CONTEXT/root$(dirname "$interpreter")"
  cp -L "$interpreter" "$CONTEXT/root$interpreter"
fi
# Names for the user the image runs as (tools print them; nothing needs them).
printf 'root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534:nobody:/data:/nonexistent\n' >"$CONTEXT/root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$CONTEXT/root/etc/group"
# /tmp writable by everyone; /data owned by the image's user (set below).
chmod 1777 "$CONTEXT/root/tmp"

cat >"$CONTEXT/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY root/ /
COPY --chown=65534:65534 data/ /data/
USER 65534:65534
WORKDIR /data
VOLUME ["/data"]
EXPOSE 7070
ENTRYPOINT ["/usr/local/bin/zonesweep"]
CMD ["--help"]
DOCKERFILE

say "libraries: $(echo $libraries | tr '\n' ' ')"
say "docker build -t $TAG (context $(du -sh "$CONTEXT/root" | cut -f1))"
docker build -q -t "$TAG" "$CONTEXT" >"$CONTEXT/build.log" 2>&1 ||
  { cat "$CONTEXT/build.log" >&2; echo "build-image: docker build failed" >&2; exit 1; }
# A smoke test: the binary starts in the image.
docker run --rm "$TAG" --version
SIZE=$(docker image inspect "$TAG" --format '{{.Size}}')
say "image $TAG: $(awk -v b="$SIZE" 'BEGIN { printf "%.1f MB", b / 1e6 }') ($SIZE bytes)"
