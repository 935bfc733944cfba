# shellcheck shell=bash
# The images' smoke test, sourced by scripts/images.sh (BAH, bah, run, say, die and the image
# names come from there). On loopback, each process as its pod runs it: nats-server (this machine's Debian
# package), rtpengine from the rtpengine image with the media pods' flags, and media-controller,
# signaling and the T-Library gateway from the huddle image through its entry point. Then one
# call: sipp as Trunk 9000's peer calls DN 7004 (a sipp phone that answers and echoes the audio),
# while a T-Library client in the huddle image watches 7004. Passes when both sipps succeed, rtpengine
# held the call's session and relayed its RTP, and the client saw the call ringing, established
# and released.

SMOKE_PIDS=()
SMOKE_CONTAINERS=()

# scripts/images.sh calls it on exit, whatever happened.
smoke_cleanup() {
  local pid ctr
  # Each background process leads its own process group: the group takes buildah's chroot children too.
  for pid in "${SMOKE_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "${SMOKE_PIDS[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${SMOKE_PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  for ctr in "${SMOKE_CONTAINERS[@]}"; do bah rm "$ctr" >/dev/null 2>&1 || true; done
  if [ -n "${SMOKE_DIR:-}" ]; then rm -rf "$SMOKE_DIR"; fi
}

# bg NAME CMD...: runs CMD in its own process group, output in $SMOKE_DIR/NAME.log; its pid in BG_PID.
bg() {
  local name=$1
  shift
  echo "+ $* &" >&2
  setsid "$@" > "$SMOKE_DIR/$name.log" 2>&1 < /dev/null &
  BG_PID=$!
  SMOKE_PIDS+=("$BG_PID")
}

show_logs() {
  local f
  for f in "$SMOKE_DIR"/*.log; do
    echo "--- $(basename "$f") (last 30 lines)"
    tail -30 "$f"
  done
}

fail() {
  echo "images: smoke FAILED: $*" >&2
  show_logs >&2
  exit 1
}

# until_ok SECONDS WHAT CMD...: runs CMD every 0.25 s until it succeeds, for at most SECONDS (each
# CMD bounds its own time: fetch and rtpengine-ctl run with a timeout). The bounds leave room for a
# machine busy with other work; on an idle one each start takes a few seconds.
until_ok() {
  local seconds=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@" > /dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what: not within $seconds s"
    sleep 0.25
  done
}

http_body() { node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).then((t) => process.stdout.write(t), () => process.exit(1))' "$1"; }
ready() { [ "$(http_body "http://127.0.0.1:$1/readyz")" = ready ]; }
tcp_open() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

# rtpengine-ctl's "Current sessions total: N" is at least 1 (ctl: the command, set by smoke).
in_call() { "${ctl[@]}" list numsessions | grep -Eq 'total: *[1-9]'; }

# A number from rtpengine-ctl's "list totals" (" <label>   :N"), read again.
total() {
  "${ctl[@]}" list totals > "$SMOKE_DIR/rtpengine-totals.log"
  grep -E "^ *$1 *:" "$SMOKE_DIR/rtpengine-totals.log" | head -1 | sed 's/.*: *//'
}
relayed_some() { [ "$(total "Total relayed packets")" -gt 0 ]; }

# The image's user is uid 1000 and can write nothing but Debian's world-writable scratch folders, so
# a read-only root filesystem (with /tmp an emptyDir, as the pods have it) changes nothing.
non_root() {
  local uid writable
  uid=$(bah run --isolation chroot "$1" -- id -u)
  # find exits non-zero on the folders it may not read.
  writable=$({ bah run --isolation chroot "$1" -- find / -xdev -writable 2> /dev/null || true; } | grep -Ev '^/(proc|sys)(/|$)' | sort | tr '\n' ' ')
  echo "   $2: runs as uid $uid; writable: $writable"
  [ "$uid" = 1000 ] || fail "$2 runs as uid $uid, not 1000"
  [ "$writable" = "/run/lock /tmp /var/lock /var/tmp " ] || fail "$2: uid $uid can write $writable"
}

# The image's ENTRYPOINT as words: the smoke runs what a pod runs, not a command of its own.
entrypoint() { bah inspect --type image "$1" | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).OCIv1.config.Entrypoint.join(" ")))'; }

smoke() {
  local start=$SECONDS nats_bin
  SMOKE_DIR=$(mktemp -d /tmp/huddle-smoke.XXXXXX)
  nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  [ -x "$nats_bin" ] || die "nats-server is not installed (apt-get install nats-server)"
  command -v sipp > /dev/null || die "sipp is not installed (apt-get install sip-tester)"

  local nats sip gateway m_media m_sig m_gw ng cli trunk phone rtp_min trunk_mp phone_mp
  read -r nats sip gateway m_media m_sig m_gw ng cli trunk phone rtp_min trunk_mp phone_mp <<< "$(node images/smoke/ports.js 10)"
  local rtp_max=$((rtp_min + 99))
  say "smoke: nats $nats, SIP $sip, gateway $gateway, rtpengine ng $ng cli $cli media $rtp_min-$rtp_max, trunk peer $trunk, phone $phone"
  mkdir -p "$SMOKE_DIR/conf" "$SMOKE_DIR/nats"
  sed -e "s/@SIP_PORT@/$sip/" -e "s/@NATS_PORT@/$nats/" -e "s/@RTP_MIN@/$rtp_min/" -e "s/@RTP_MAX@/$rtp_max/" \
    -e "s/@GATEWAY_PORT@/$gateway/" -e "s/@TRUNK_PORT@/$trunk/" images/smoke/site.yaml > "$SMOKE_DIR/conf/site.yaml"

  bg nats "$nats_bin" -js -a 127.0.0.1 -p "$nats" -sd "$SMOKE_DIR/nats"
  until_ok 20 "nats-server listening on $nats" tcp_open "$nats"

  local rtp app
  rtp=$(bah from --name "huddle-smoke-rtpengine-$$" "$RTPENGINE_IMAGE")
  SMOKE_CONTAINERS+=("$rtp")
  app=$(bah from --name "huddle-smoke-huddle-$$" "$HUDDLE_IMAGE")
  SMOKE_CONTAINERS+=("$app")
  local rtp_entry app_entry
  read -r -a rtp_entry <<< "$(entrypoint "$RTPENGINE_IMAGE")"
  read -r -a app_entry <<< "$(entrypoint "$HUDDLE_IMAGE")"
  local ctl=(timeout 20 "${BAH[@]}" run --isolation chroot "$rtp" -- rtpengine-ctl -ip 127.0.0.1 -port "$cli")
  non_root "$rtp" "$RTPENGINE_IMAGE"
  non_root "$app" "$HUDDLE_IMAGE"

  # The SIP edge image takes the configuration the operator generates for it (operator/edge.ts:
  # the tls, path and nathelper modules included), with the pod's interface and Services as loopback.
  local edge
  edge=$(bah from --name "huddle-smoke-kamailio-$$" "$EDGE_IMAGE")
  SMOKE_CONTAINERS+=("$edge")
  non_root "$edge" "$EDGE_IMAGE"
  mkdir -p "$SMOKE_DIR/edge"
  run npx tsx scripts/smoke-edge-config.ts "$SMOKE_DIR/edge"
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=smoke-edge -days 1 -keyout "$SMOKE_DIR/edge/tls.key" -out "$SMOKE_DIR/edge/tls.crt" 2> /dev/null
  chmod -R a+rX "$SMOKE_DIR/edge"
  timeout 60 "${BAH[@]}" run --isolation chroot -v "$SMOKE_DIR/edge:/etc/huddle/edge:ro" -v "$SMOKE_DIR/edge:/etc/huddle/sip-tls:ro" "$edge" -- \
    kamailio -c -f /etc/huddle/edge/kamailio.cfg > "$SMOKE_DIR/edge-check.log" 2>&1 || fail "the SIP edge image refused the operator's configuration"
  grep -q "config file ok" "$SMOKE_DIR/edge-check.log" || fail "the SIP edge image did not check the operator's configuration"
  echo "   $EDGE_IMAGE: the operator's configuration is ok ($(grep -c '^loadmodule' "$SMOKE_DIR/edge/kamailio.cfg") modules)"

  # The media pod's flags (operator/desired.ts), the pod address being 127.0.0.1 here.
  bg rtpengine "${BAH[@]}" run --isolation chroot "$rtp" -- "${rtp_entry[@]}" --config-file=none --foreground --table=-1 \
    --interface=127.0.0.1 "--listen-ng=127.0.0.1:$ng" "--listen-cli=127.0.0.1:$cli" \
    "--port-min=$rtp_min" "--port-max=$rtp_max" --log-stderr --log-level=6 --delete-delay=0 --num-threads=1
  # The media pod's readiness probe.
  until_ok 90 "rtpengine answering rtpengine-ctl" "${ctl[@]}" list numsessions

  # Pod environment (operator/desired.ts). media-controller also publishes the site to the config
  # bucket (HUDDLE_CONFIG), as the operator would; the others read it from there.
  local env=(-e HUDDLE_CLUSTER=smoke -e "HUDDLE_NATS_URL=nats://127.0.0.1:$nats" -e LOG_LEVEL=info)
  bg media-controller "${BAH[@]}" run --isolation chroot "${env[@]}" -e POD_NAME=media-0 -e POD_IP=127.0.0.1 \
    -e "HUDDLE_RTPENGINE=127.0.0.1:$ng" -e "HUDDLE_METRICS_LISTEN=127.0.0.1:$m_media" \
    -e HUDDLE_CONFIG=/etc/huddle/smoke/site.yaml -v "$SMOKE_DIR/conf:/etc/huddle/smoke:ro" \
    "$app" -- "${app_entry[@]}" dist/bin/media-controller.js
  until_ok 150 "media-controller ready" ready "$m_media"
  bg signaling "${BAH[@]}" run --isolation chroot "${env[@]}" -e POD_NAME=signaling-0 -e "HUDDLE_METRICS_LISTEN=127.0.0.1:$m_sig" \
    "$app" -- "${app_entry[@]}" dist/bin/signaling.js
  bg gateway "${BAH[@]}" run --isolation chroot "${env[@]}" -e POD_NAME=gateway-0 -e "HUDDLE_METRICS_LISTEN=127.0.0.1:$m_gw" \
    "$app" -- "${app_entry[@]}" dist/bin/tlib-gateway.js
  until_ok 150 "signaling ready" ready "$m_sig"
  until_ok 150 "gateway ready" ready "$m_gw"
  say "smoke: rtpengine, media-controller, signaling and gateway ready after $((SECONDS - start)) s"

  bg tlib "${BAH[@]}" run --isolation chroot "$app" -- "${app_entry[@]}" dist/tlib-api/cli/main.js watch 7004 --json \
    --url "ws://127.0.0.1:$gateway/tlib" --token smoke-token-7004
  until_ok 60 "T-Library client registered 7004 at the gateway" grep -q EventRegistered "$SMOKE_DIR/tlib.log"

  local sipp_common=(-i 127.0.0.1 -t u1 -m 1 -nostdin -timeout 30s -timeout_error)
  run timeout 20 sipp "127.0.0.1:$sip" -sf test/e2e/scenarios/register.xml -p "$phone" -s 7004 -au 7004 -ap smoke-7004-secret "${sipp_common[@]}" \
    > "$SMOKE_DIR/sipp-register.log" || fail "sipp could not register 7004"
  local phone_pid caller_pid
  bg phone timeout 40 sipp -sf images/smoke/answer.xml -p "$phone" -mp "$phone_mp" -rtp_echo "${sipp_common[@]}"
  phone_pid=$BG_PID
  bg caller timeout 40 sipp "127.0.0.1:$sip" -sf images/smoke/call.xml -p "$trunk" -mp "$trunk_mp" -s 7004 -d 4000 "${sipp_common[@]}"
  caller_pid=$BG_PID

  until_ok 20 "rtpengine holding the call's session" in_call
  "${ctl[@]}" list numsessions | grep total | sed 's/^/   rtpengine during the call: /'

  local caller_rc=0 phone_rc=0
  wait "$caller_pid" || caller_rc=$?
  wait "$phone_pid" || phone_rc=$?
  [ "$caller_rc" = 0 ] || fail "the calling sipp failed ($caller_rc)"
  [ "$phone_rc" = 0 ] || fail "the answering sipp failed ($phone_rc)"
  until_ok 10 "rtpengine counting the call's RTP" relayed_some
  echo "   rtpengine after the call: $(total "Total managed sessions") sessions, $(total "Total relayed packets") RTP packets relayed, $(total "Total number of 1-way streams") one-way streams"
  # The callee echoes what it hears: a stream that carried audio one way only means a broken path.
  [ "$(total "Total number of 1-way streams")" = 0 ] || fail "rtpengine saw one-way audio"
  local event
  for event in EventRinging EventEstablished EventReleased; do
    until_ok 10 "T-Library $event for 7004" grep -q "\"event\":\"$event\"" "$SMOKE_DIR/tlib.log"
  done
  echo "   T-Library client on 7004: $(grep -o '"event":"[A-Za-z]*"' "$SMOKE_DIR/tlib.log" | cut -d'"' -f4 | tr '\n' ' ')"
  say "smoke: passed in $((SECONDS - start)) s"
}
