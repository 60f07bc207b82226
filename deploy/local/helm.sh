# The Helm CLI for the chart's tests (tests/deploy/test_helm_chart.py; kubernetes-validate comes with the test
# extras). Sourced by ./dev after deploy/local/stack.sh (uses its say and die). Idempotent: a second run finds
# it in place and needs no network. It is kept outside the checkout, so a fresh clone reuses it.

HELM_MODULE=helm.sh/helm/v4
HELM_VERSION=v4.3.2
HELM_FALLBACK_MODULE=helm.sh/helm/v3
HELM_FALLBACK_VERSION=v3.21.4
TOOLS_BIN="${XDG_CACHE_HOME:-$HOME/.cache}/nmbrs-sync/tools/bin"
export HELM_BIN="$TOOLS_BIN/helm"

# go_install_helm MODULE VERSION: build one Helm CLI into $TOOLS_BIN. The -X stamps the version that
# Helm's release builds carry (`helm version`); without it a source build reports only vMAJOR.MINOR.
go_install_helm() {
  GOBIN="$TOOLS_BIN" CGO_ENABLED=0 "$GO" install -ldflags "-X $1/internal/version.version=$2" "$1/cmd/helm@$2"
}

# Helm publishes its release binaries outside the registries this project may reach; its Go module is in
# the Go module proxy, so the real CLI is built from source (about ten minutes once, then kept).
ensure_helm() {
  local helm="$TOOLS_BIN/helm" have=
  [ -x "$helm" ] && have=$("$helm" version --short 2>/dev/null)
  case "$have" in
    "$HELM_VERSION"* | "$HELM_FALLBACK_VERSION"*) ;;
    *)
      # This machine kind installs Go in /usr/local/go, which a non-login shell may not have on its PATH.
      GO=$(command -v go || echo /usr/local/go/bin/go)
      [ -x "$GO" ] || die "Go is missing (it builds the Helm CLI for the chart tests; Debian's golang-go is too old)"
      mkdir -p "$TOOLS_BIN"
      say "building the Helm CLI $HELM_VERSION from its Go module into $TOOLS_BIN (once)"
      go_install_helm "$HELM_MODULE" "$HELM_VERSION" \
        || { say "Helm $HELM_VERSION did not build; trying $HELM_FALLBACK_VERSION"
             go_install_helm "$HELM_FALLBACK_MODULE" "$HELM_FALLBACK_VERSION"; } \
        || die "building the Helm CLI failed (no network to the Go module proxy?)"
      ;;
  esac
}
