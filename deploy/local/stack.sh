# Local stack for development and tests: Python venv, Apache Kafka (KRaft, single node) and PostgreSQL.
# Sourced by ./dev. Every step is idempotent: a second run reuses what is there and needs no network.
# Only processes these scripts started (recorded pid files) are ever stopped.

ROOT=${ROOT:?ROOT must be set by ./dev}
STACK="$ROOT/.stack"
KAFKA_DIR="$STACK/kafka"
KAFKA_PORT=${NMBRS_SYNC_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${NMBRS_SYNC_KAFKA_CONTROLLER_PORT:-9093}
PG_PORT=${NMBRS_SYNC_PG_PORT:-54329}
PG_VERSION_WANTED=15
# PostgreSQL refuses to run as root and must reach its data directory as the 'postgres' user; a CI clone
# may sit below a private (0700) temp dir, so the cluster lives under /var/tmp, one per checkout.
PG_HOME="/var/tmp/nmbrs-sync/$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
PG_DATA="$PG_HOME/data"
VENV="$ROOT/.venv"

say() { printf '\033[1m[dev]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[dev] error:\033[0m %s\n' "$*" >&2; exit 1; }

# --- helpers -------------------------------------------------------------------------------------

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.5 s until it succeeds or time runs out.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@"; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.5
  done
  say "$what ready"
}

apt_install() {
  say "installing Debian packages: $*"
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null || die "apt-get update failed (no network to Debian's mirrors?)"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

# --- Python --------------------------------------------------------------------------------------

ensure_venv() {
  local stamp="$VENV/.installed" want
  want=$(sha1sum "$ROOT/pyproject.toml" | cut -c1-40)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  command -v python3 >/dev/null || die "python3 is missing (Python >= 3.11 is needed)"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python >= 3.11 is needed"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || die "could not create $VENV"
  say "installing Python packages into .venv"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[test]" \
    || die "pip install failed (no network to PyPI?)"
  echo "$want" >"$stamp"
}

# The browser tests drive Debian's Chromium (Playwright never downloads one of its own here).
ensure_chromium() {
  command -v chromium >/dev/null || apt_install chromium
  command -v chromium >/dev/null || die "Chromium is missing and could not be installed (the web app's browser tests need it)"
}

# The alert-rule and scrape tests run Debian's promtool and prometheus (the tests start their own). The
# package's postinst starts its service: without systemd, invoke-rc.d runs the init script, which leaves a
# Prometheus on :9090 behind, or fails the install where a container caps open files below its
# `ulimit -n 32768`. A policy-rc.d that denies every action (only for the install, unless one is there
# already) keeps it from starting; where systemd runs, the unit is disabled too, so none runs after a
# reboot either. Without recommends: prometheus-node-exporter would be one more service.
ensure_prometheus() {
  [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] && return 0
  local policy=/usr/sbin/policy-rc.d made_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  local rc=0
  (apt_install --no-install-recommends prometheus) || rc=$?  # a subshell: its die still lets us clean up
  if [ -n "$made_policy" ]; then rm -f "$policy"; fi
  [ "$rc" = 0 ] || exit "$rc"
  if [ -d /run/systemd/system ]; then systemctl disable --now prometheus.service >/dev/null 2>&1 || true; fi
  [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] \
    || die "prometheus/promtool are missing and could not be installed (the alert-rule and scrape tests need them)"
}

# The systemd unit tests ask systemd-analyze to verify and score the units (no systemd needs to run).
ensure_systemd_analyze() {
  command -v systemd-analyze >/dev/null && return 0
  apt_install --no-install-recommends systemd
  command -v systemd-analyze >/dev/null || die "systemd-analyze is missing and could not be installed"
}

# --- Kafka ---------------------------------------------------------------------------------------

ensure_java() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v java >/dev/null || die "Java is missing and could not be installed (Kafka needs Java 17+)"
  command -v mvn >/dev/null || apt_install maven
  command -v mvn >/dev/null || die "Maven is missing and could not be installed (it fetches Kafka's jars)"
}

ensure_kafka_jars() {
  local libs="$KAFKA_DIR/libs" stamp="$KAFKA_DIR/libs/.pom-sha1" want
  want=$(sha1sum "$ROOT/deploy/local/kafka/pom.xml" | cut -c1-40)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  ensure_java
  say "collecting Apache Kafka jars from Maven Central (cached in ~/.m2 afterwards)"
  rm -rf "$libs" && mkdir -p "$libs"
  mvn -B -q -f "$ROOT/deploy/local/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >"$KAFKA_DIR/mvn.log" 2>&1 \
    || die "downloading the Kafka jars failed; see $KAFKA_DIR/mvn.log"
  echo "$want" >"$stamp"
}

kafka_up() {
  mkdir -p "$KAFKA_DIR"
  if pid_alive "$KAFKA_DIR/kafka.pid"; then say "Kafka already running (pid $(cat "$KAFKA_DIR/kafka.pid"))"; return 0; fi
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$port" && die "port $port is taken by another process; stop it or set NMBRS_SYNC_KAFKA_PORT"
  done
  ensure_kafka_jars
  ensure_java
  sed -e "s#@DATA@#$KAFKA_DIR/data#" -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CPORT@#$KAFKA_CONTROLLER_PORT#g" \
    "$ROOT/deploy/local/kafka/server.properties" >"$KAFKA_DIR/server.properties"
  local cp="$KAFKA_DIR/libs/*"
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    java -cp "$cp" kafka.tools.StorageTool format -t "$(cat /proc/sys/kernel/random/uuid | tr -d - | head -c 22)" \
      -c "$KAFKA_DIR/server.properties" --ignore-formatted >"$KAFKA_DIR/format.log" 2>&1 \
      || die "formatting Kafka storage failed; see $KAFKA_DIR/format.log"
  fi
  say "starting Apache Kafka on 127.0.0.1:$KAFKA_PORT (log: .stack/kafka/kafka.log)"
  nohup java -Xms256m -Xmx512m -XX:+UseG1GC -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$cp" kafka.Kafka "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/kafka.log" 2>&1 &
  echo $! >"$KAFKA_DIR/kafka.pid"
  wait_for 90 "Kafka port" port_open "$KAFKA_PORT" \
    || { tail -20 "$KAFKA_DIR/kafka.log" >&2; die "Kafka did not open port $KAFKA_PORT within 90 s"; }
}

kafka_down() {
  if pid_alive "$KAFKA_DIR/kafka.pid"; then
    local pid; pid=$(cat "$KAFKA_DIR/kafka.pid")
    say "stopping Kafka (pid $pid)"
    kill "$pid"
    wait_for 60 "Kafka stop" bash -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid"
  fi
  rm -f "$KAFKA_DIR/kafka.pid"
}

# --- PostgreSQL ----------------------------------------------------------------------------------

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }; done
  return 1
}

ensure_postgres_installed() {
  pg_bin >/dev/null || apt_install "postgresql-$PG_VERSION_WANTED" || true
  pg_bin >/dev/null || apt_install postgresql
  pg_bin >/dev/null || die "PostgreSQL server binaries are missing and could not be installed"
  id postgres >/dev/null 2>&1 || die "the 'postgres' system user is missing (Debian's postgresql package creates it)"
}

# runs from / because the caller's directory may be closed to the postgres user
as_postgres() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

pg_up() {
  ensure_postgres_installed
  local bin; bin=$(pg_bin)
  mkdir -p "$PG_HOME" "$STACK"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_HOME"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    say "creating a PostgreSQL cluster in $PG_DATA"
    as_postgres "$bin/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$PG_HOME/initdb.log" 2>&1 \
      || die "initdb failed; see $PG_HOME/initdb.log"
  fi
  if as_postgres "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    say "PostgreSQL already running on 127.0.0.1:$PG_PORT"
  else
    port_open "$PG_PORT" && die "port $PG_PORT is taken by another process; stop it or set NMBRS_SYNC_PG_PORT"
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_postgres "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_HOME/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_HOME -c fsync=off -c max_connections=100" start >/dev/null \
      || { tail -20 "$PG_HOME/postgres.log" >&2; die "PostgreSQL did not start within 60 s"; }
  fi
  head -1 "$PG_DATA/postmaster.pid" >"$STACK/postgres.pid"
  wait_for 30 "PostgreSQL" "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || die "PostgreSQL is not accepting connections"
  local psql=("$bin/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1)
  "${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname='nmbrs_sync'" | grep -q 1 \
    || "${psql[@]}" -c "CREATE ROLE nmbrs_sync LOGIN PASSWORD 'nmbrs_sync' CREATEDB" >/dev/null
  for db in nmbrs_sync nmbrs_sync_test nmbrs_sync_bench; do
    "${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
      || "${psql[@]}" -c "CREATE DATABASE $db OWNER nmbrs_sync" >/dev/null
  done
}

pg_down() {
  local bin; bin=$(pg_bin) || return 0
  if [ -f "$PG_DATA/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    say "stopping PostgreSQL"
    as_postgres "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
  fi
  rm -f "$STACK/postgres.pid"
}

stack_purge() {
  say "removing local data (.stack, $PG_HOME)"
  rm -rf "$KAFKA_DIR/data" "$PG_HOME"
}
