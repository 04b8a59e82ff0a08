#!/usr/bin/env bash
# Run a real, local OpenSearch 2.19 node for tests, the demo and CI.
#
#   scripts/opensearch.sh start    fetch (cached), start on 127.0.0.1, wait for health
#   scripts/opensearch.sh stop     stop the node this script started
#   scripts/opensearch.sh status   exit 0 when the node answers
#   scripts/opensearch.sh url      print the URL to use
#
# With OPENSEARCH_URL set, nothing is fetched or started: the script only checks
# that the server there answers. A node that already answers on the port is reused.
#
# The node is OpenSearch's integration-test distribution from Maven Central
# (no security plugin: plain HTTP on loopback only). OpenSearch refuses to run
# as root, so when run as root the script runs it as the user $OS_USER.
#
# That distribution ships one module (transport-netty4): no `reindex` module, so no
# _delete_by_query, which `ddbsync purge-tombstones` and `ddbsync doctor` use. The
# fetch step adds it from Maven Central: the module's jar of the same version
# (org.opensearch.plugin:reindex-client) and its runtime dependencies, minus the
# jars the distribution's lib/ already has, under modules/reindex/ with a plugin
# descriptor. It grants no security policy: _reindex from a remote cluster (which
# opens sockets) is refused; delete-, update-by-query and local _reindex work. When
# the module cannot be fetched, start fails: the tests assert that purge uses
# _delete_by_query, never silently its fallback. A node already answering on the
# port without the module is refused too (stop it, start again).
set -euo pipefail

OS_VERSION="${OS_VERSION:-2.19.6}"
OS_PORT="${OS_PORT:-9200}"
OS_HEAP="${OS_HEAP:-512m}"
OS_USER="${OS_USER:-ddbsync-os}"
if [[ "$(id -u)" == "0" ]]; then DEFAULT_CACHE=/var/cache/ddbsync; else DEFAULT_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/ddbsync"; fi
CACHE_DIR="${DDBSYNC_CACHE:-$DEFAULT_CACHE}"
HOME_DIR="$CACHE_DIR/opensearch-$OS_VERSION"
RUN_DIR="${OS_RUN_DIR:-/tmp/ddbsync-opensearch-$OS_PORT}"
PID_FILE="$RUN_DIR/opensearch.pid"
LOCAL_URL="http://127.0.0.1:$OS_PORT"

say() { printf '[opensearch] %s\n' "$*" >&2; }

url() { printf '%s\n' "${OPENSEARCH_URL:-$LOCAL_URL}"; }

healthy() {
  curl -fsS --max-time 2 "$(url)/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1
}

fetch() {
  if [[ -x "$HOME_DIR/bin/opensearch" ]]; then return; fi
  mkdir -p "$CACHE_DIR"
  local zip="$HOME/.m2/repository/org/opensearch/distribution/integ-test-zip/opensearch/$OS_VERSION/opensearch-$OS_VERSION.zip"
  if [[ ! -f "$zip" ]]; then
    command -v mvn >/dev/null || { say "Maven (mvn) is needed to fetch OpenSearch $OS_VERSION"; exit 1; }
    say "fetching OpenSearch $OS_VERSION from Maven Central (once; cached in ~/.m2)"
    mvn -q -B dependency:get -Dtransitive=false \
      "-Dartifact=org.opensearch.distribution.integ-test-zip:opensearch:$OS_VERSION:zip" >&2
  fi
  say "unpacking into $HOME_DIR"
  local tmp; tmp="$(mktemp -d "$CACHE_DIR/unzip.XXXXXX")"
  unzip -q "$zip" -d "$tmp"
  rm -rf "$HOME_DIR"
  mv "$tmp/opensearch-$OS_VERSION" "$HOME_DIR"
  rm -rf "$tmp"
}

# Add the reindex module (see the header) to the unpacked distribution, once.
fetch_reindex() {
  local dir="$HOME_DIR/modules/reindex"
  if [[ -f "$dir/plugin-descriptor.properties" ]]; then return; fi
  command -v mvn >/dev/null || { say "Maven (mvn) is needed to fetch the reindex module"; exit 1; }
  say "adding the reindex module $OS_VERSION from Maven Central (once; cached in ~/.m2)"
  local tmp; tmp="$(mktemp -d "$CACHE_DIR/reindex.XXXXXX")"
  # Jars the server already loads from lib/ must not be loaded twice (jar hell).
  # (No GNU-only find -printf: this runs on a Mac too.)
  local in_lib; in_lib="$(for jar in "$HOME_DIR"/lib/*.jar; do basename "$jar"; done \
    | sed -E 's/-[0-9][^/]*\.jar$//' | paste -sd, -)"
  printf '%s\n' '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>' \
    '<groupId>local.ddbsync</groupId><artifactId>reindex-module</artifactId><version>1</version>' \
    '<dependencies><dependency><groupId>org.opensearch.plugin</groupId>' \
    "<artifactId>reindex-client</artifactId><version>$OS_VERSION</version>" \
    '</dependency></dependencies></project>' >"$tmp/pom.xml"
  if ! mvn -q -B -Dstyle.color=never -f "$tmp/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      "-DoutputDirectory=$tmp/reindex" "-DexcludeArtifactIds=$in_lib" 2>&1 \
      | sed 's/\x1b\[[0-9;]*m//g' >&2; then  # Maven's messages, without colour codes
    rm -rf "$tmp"
    say "could not fetch org.opensearch.plugin:reindex-client:$OS_VERSION and its dependencies" \
      "from Maven Central: the node would have no _delete_by_query; not starting"
    exit 1
  fi
  printf '%s\n' \
    "description=Reindex, update- and delete-by-query (added by scripts/opensearch.sh)" \
    "version=$OS_VERSION" "name=reindex" "classname=org.opensearch.index.reindex.ReindexPlugin" \
    "java.version=11" "opensearch.version=$OS_VERSION" "custom.foldername=" "extended.plugins=" \
    "has.native.controller=false" >"$tmp/reindex/plugin-descriptor.properties"
  rm -rf "$dir"
  mv "$tmp/reindex" "$dir"
  rm -rf "$tmp"
}

has_reindex() {
  curl -fsS --max-time 5 "$(url)/_nodes/_local/plugins?filter_path=nodes.*.modules.name" 2>/dev/null \
    | grep -q '"reindex"'
}

start() {
  if healthy; then
    if [[ -z "${OPENSEARCH_URL:-}" ]] && ! has_reindex; then
      say "a node without the reindex module (no _delete_by_query) answers on $LOCAL_URL:" \
        "stop it (scripts/opensearch.sh stop, if this script started it) and start again"
      exit 1
    fi
    say "already answering at $(url): reusing it"; return
  fi
  if [[ -n "${OPENSEARCH_URL:-}" ]]; then
    say "OPENSEARCH_URL=$OPENSEARCH_URL does not answer; start that server or unset OPENSEARCH_URL"
    exit 1
  fi
  fetch
  fetch_reindex
  mkdir -p "$RUN_DIR/data" "$RUN_DIR/logs"
  local runner=()
  if [[ "$(id -u)" == "0" ]]; then
    id "$OS_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$OS_USER"
    # jvm.options writes logs/gc.log under the install, and config/ gets a keystore.
    mkdir -p "$HOME_DIR/logs"
    chown -R "$OS_USER" "$RUN_DIR" "$HOME_DIR/config" "$HOME_DIR/logs"
    chmod -R o+rX "$HOME_DIR"
    runner=(runuser -u "$OS_USER" --)
  fi
  # The integration-test distribution ships no JDK: use the machine's Java 17+.
  if [[ -z "${OPENSEARCH_JAVA_HOME:-}" ]]; then
    command -v java >/dev/null || { say "Java 17+ is needed (apt-get install openjdk-17-jre-headless)"; exit 1; }
    OPENSEARCH_JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
  fi
  export OPENSEARCH_JAVA_HOME
  say "starting OpenSearch $OS_VERSION on $LOCAL_URL (heap $OS_HEAP, logs in $RUN_DIR/logs)"
  cd "$RUN_DIR"
  OPENSEARCH_JAVA_OPTS="-Xms$OS_HEAP -Xmx$OS_HEAP ${OPENSEARCH_EXTRA_JAVA_OPTS:-}" \
    "${runner[@]}" "$HOME_DIR/bin/opensearch" -d -p "$PID_FILE" \
      -Enetwork.host=127.0.0.1 -Ehttp.port="$OS_PORT" -Etransport.port=$((OS_PORT + 100)) \
      -Ediscovery.type=single-node -Epath.data="$RUN_DIR/data" -Epath.logs="$RUN_DIR/logs" \
      -Ecluster.routing.allocation.disk.threshold_enabled=false \
      -Eaction.auto_create_index=false >"$RUN_DIR/stdout.log" 2>&1 || {
        say "OpenSearch failed to start; see $RUN_DIR/stdout.log and $RUN_DIR/logs"; tail -20 "$RUN_DIR/stdout.log" >&2; exit 1; }
  for _ in $(seq 1 120); do
    if healthy; then say "ready at $LOCAL_URL"; return; fi
    sleep 1
  done
  say "OpenSearch did not become healthy in 120 s; last log lines:"
  tail -30 "$RUN_DIR/logs/"*.log >&2 || true
  exit 1
}

stop() {
  if [[ -f "$PID_FILE" ]]; then
    local pid; pid="$(cat "$PID_FILE")"
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      kill -9 "$pid" 2>/dev/null || true
      say "stopped (pid $pid)"
    fi
    rm -f "$PID_FILE"
  else
    say "no node started by this script on port $OS_PORT"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) healthy ;;
  url) url ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
