#!/usr/bin/env bash
# The local demo: installs what is missing, builds, then runs a real ejabberd and `evpn-ca serve`
# on loopback in a temporary directory, enrolls three nodes, shows what each got, and stops
# everything it started. Usage: deploy/demo.sh   (as root on Debian bookworm)
# EVPN_BIN_DIR=/usr/bin runs it with installed evpn-ca and evpn-agent instead of building them.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${EVPN_BUILD_DIR:-$src/build}
domain=evpn.test

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "installing missing packages"
"$src/deploy/install-deps.sh"

if [ -n "${EVPN_BIN_DIR:-}" ]; then
  # Installed binaries (EVPN_BIN_DIR=/usr/bin after installing the Debian packages): no build.
  ca_bin=$EVPN_BIN_DIR/evpn-ca
  agent_bin=$EVPN_BIN_DIR/evpn-agent
  for bin in "$ca_bin" "$agent_bin"; do
    [ -x "$bin" ] || { echo "EVPN_BIN_DIR=$EVPN_BIN_DIR has no executable ${bin##*/}"; exit 1; }
  done
else
  step "building into $build"
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEVPN_TEST_HOOKS=OFF >/dev/null
  cmake --build "$build" --target evpn-ca evpn-agent -j"$(nproc)" >/dev/null
  ca_bin=$build/ca-service/evpn-ca
  agent_bin=$build/agent/evpn-agent
fi
echo "using $ca_bin and $agent_bin"

work=$(mktemp -d /tmp/evpn-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${EVPN_KEEP_DEMO:-}" ] && echo "demo files kept in $work" || rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port, chosen by the kernel.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
c2s_port=$(free_port); api_port=$(free_port); ca_port=$(free_port)

wait_port() {  # wait_port PORT PID NAME LOG
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "$3 exited while starting:"; cat "$4"; exit 1; }
    sleep 0.05
  done
  echo "$3 did not start listening on port $1:"; cat "$4"; exit 1
}

# The ejabberd account evpn-ca calls the HTTP API as; its password never leaves this file.
account="evpn-ca@$domain"
(umask 077 && openssl rand -hex 16 > "$work/ejabberd-account.secret")

step "creating the CA (directory: ejabberd at 127.0.0.1:$api_port, as $account)"
"$ca_bin" init --dir "$work/ca" --xmpp-domain "$domain" --xmpp-host 127.0.0.1 --xmpp-port "$c2s_port" \
  --directory ejabberd --directory-url "http://127.0.0.1:$api_port/api" \
  --directory-user "$account" --directory-secret-file "$work/ejabberd-account.secret" \
  --listen "127.0.0.1:$ca_port" > "$work/fingerprint"
fingerprint=$(cat "$work/fingerprint")
echo "root fingerprint: $fingerprint"
"$ca_bin" server-cert --dir "$work/ca" --name "$domain" --name localhost --name 127.0.0.1 --out "$work/xmpp"

step "starting ejabberd on 127.0.0.1:$c2s_port (SASL EXTERNAL only; API for $account only)"
mkdir -p "$work/ejabberd/spool" "$work/ejabberd/logs"
sed -e "s|@DOMAIN@|$domain|g" -e "s|@SERVER_PEM@|$work/xmpp.pem|g" -e "s|@CA_FILE@|$work/ca/ca.crt|g" \
    -e "s|@C2S_PORT@|$c2s_port|g" -e "s|@HTTP_PORT@|$api_port|g" -e "s|@ADMIN_JID@|$account|g" \
    "$src/deploy/ejabberd/ejabberd.yml.in" > "$work/ejabberd/ejabberd.yml"
erl_libs=$(dirname "$(dirname "$(dirname "$(ls -d /usr/lib/*/ejabberd-*/ebin/ejabberd.app | head -n1)")")")
# Without Erlang distribution ejabberdctl cannot reach this ejabberd, so the VM registers the
# account itself once ejabberd has started (a production server uses `ejabberdctl register`).
( cd "$work/ejabberd/spool" && EJABBERD_CONFIG_PATH="$work/ejabberd/ejabberd.yml" \
  EJABBERD_LOG_PATH="$work/ejabberd/logs/ejabberd.log" ERL_LIBS="$erl_libs" ERL_CRASH_DUMP_BYTES=0 \
  EVPN_EJABBERD_ACCOUNT="$account" EVPN_EJABBERD_ACCOUNT_SECRET_FILE="$work/ejabberd-account.secret" \
  exec erl +K true -noinput -mnesia dir "\"$work/ejabberd/spool\"" -s ejabberd \
    -eval "{ok, _} = file:script(\"$src/deploy/ejabberd/register-account.script\")." ) \
  > "$work/ejabberd/logs/stdout.log" 2>&1 &
pids+=($!)
wait_port "$c2s_port" "$!" ejabberd "$work/ejabberd/logs/stdout.log"
# The API answers once the account exists; curl reads the credentials from stdin, not argv.
api() {  # api COMMAND JSON: prints the answer's body then its HTTP status
  printf 'user = "%s:%s"\n' "$account" "$(cat "$work/ejabberd-account.secret")" |
    curl -s -K - -w ' (HTTP %{http_code})' -X POST "http://127.0.0.1:$api_port/api/$1" \
      -H 'Content-Type: application/json' -d "$2"
}
for try in $(seq 1 600); do
  case $(api status '{}') in *"(HTTP 200)") break ;; esac
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "ejabberd exited while starting:"; cat "$work/ejabberd/logs/stdout.log"; exit 1; }
  [ "$try" = 600 ] && { echo "ejabberd's API did not accept $account:"; cat "$work/ejabberd/logs/stdout.log"; exit 1; }
  sleep 0.05
done

step "starting evpn-ca serve on https://127.0.0.1:$ca_port"
"$ca_bin" serve --dir "$work/ca" 2> "$work/ca-serve.log" &
pids+=($!)
wait_port "$ca_port" "$!" "evpn-ca serve" "$work/ca-serve.log"

step "creating group 'demo' for overlay 101000F and a token for three nodes"
"$ca_bin" group add --dir "$work/ca" --name demo --overlay 101000F --lifetime 30d
token=$("$ca_bin" token create --dir "$work/ca" --group demo --uses 3 --ttl 1h)

# node1 has an EdgeVPN >= 23 config, node2 an EdgeVPN 21 (CFx) config, node3 none yet.
for n in 1 2 3; do mkdir -p "$work/node$n"; done
cat > "$work/node1/config.json" <<'JSON'
{
  "Broker": { "Overlays": ["101000F"] },
  "Signal": { "Overlays": { "101000F": { "HostAddress": "old.example", "AuthenticationMethod": "PASSWORD",
                                         "Port": "5222", "Username": "user@openfire.local", "Password": "passwd" } } },
  "LinkManager": { "Stun": ["stun.l.google.com:19302"] }
}
JSON
cat > "$work/node2/config.json" <<'JSON'
{ "CFx": { "Overlays": [] }, "Logger": { "LogLevel": "INFO" } }
JSON

for n in 1 2 3; do
  step "enrolling node$n"
  "$agent_bin" enroll --ca-url "https://127.0.0.1:$ca_port" --fingerprint "$fingerprint" --token "$token" \
    --username "node$n" --state-dir "$work/node$n/state" --evio-config "$work/node$n/config.json"
  echo "Signal section written to $work/node$n/config.json:"
  python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["Signal"], indent=2))' \
    "$work/node$n/config.json"
done

step "what the servers saw"
grep -o 'Accepted c2s EXTERNAL authentication for [^ ]*' "$work/ejabberd/logs/ejabberd.log" || true
grep -o 'POST /v1/enroll .*' "$work/ca-serve.log" || true
for n in 1 2 3; do
  answer=$(api check_account "{\"user\":\"node$n\",\"host\":\"$domain\"}")
  [ "$answer" = "0 (HTTP 200)" ] && echo "ejabberd account node$n@$domain exists" || echo "node$n@$domain: $answer"
done
echo "the API without credentials, from loopback: $(curl -s -o /dev/null -w 'HTTP %{http_code}' -X POST \
  "http://127.0.0.1:$api_port/api/register" -H 'Content-Type: application/json' \
  -d "{\"user\":\"intruder\",\"host\":\"$domain\",\"password\":\"x\"}") (refused)"
echo "$account asking for a command evpn-ca does not use: $(api registered_users "{\"host\":\"$domain\"}")"

step "a fourth enrollment with the used-up token is refused (exit code 3) and changes nothing"
set +e
"$agent_bin" enroll --ca-url "https://127.0.0.1:$ca_port" --fingerprint "$fingerprint" --token "$token" \
  --username node4 --state-dir "$work/node4/state" --evio-config "$work/node4/config.json"
rc=$?
# The agent creates its state directory before it asks (it keeps the key there until the answer is
# final); a refusal leaves no file in it.
echo "exit code $rc; files left under $work/node4: $(find "$work/node4" -type f 2>/dev/null | wc -l)"
set -e

step "stopping ejabberd and evpn-ca"
