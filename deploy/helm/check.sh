#!/usr/bin/env bash
# Renders the Helm chart in deploy/helm/natter/ and checks what comes out, offline (CI has no
# internet; everything comes from the package registries the machine reaches):
#
#   1. `helm lint --strict` with each values file;
#   2. `helm template` with the defaults, ci/dev-values.yaml (one node) and
#      ci/production-values.yaml, each object then checked against the Kubernetes JSON schemas
#      of the oldest Kubernetes the chart supports and the newest the schemas know (strict: an
#      unknown field fails), and against Natter's rules (check.py: probes, resources, secrets
#      from Secrets, unique worker ids, the edge's drain inside its grace period, a disruption
#      budget over every workload, no variable a service does not read);
#   3. every setting of every service (its clap config) named in values.yaml (check.py settings),
#      and the engines' files parsing (check.py engines);
#   4. the chart refusing what must not render (overlapping worker ids, two presence instances,
#      a setting the chart owns passed through `config`, local media storage on two replicas, a
#      value values.schema.json does not know),
#      and check.py catching a broken render (a grace period shorter than the drain, a database
#      URL as a literal).
#
# Tools, built or installed once into $NATTER_CACHE (default ~/.cache/natter) and reused:
#   helm                Helm 3, built with the machine's Go from deploy/helm/tools/go.mod (the Go
#                       module proxy); rebuilt when go.mod, go.sum or the flags change.
#   kubernetes-validate from PyPI, pinned: it ships the Kubernetes JSON schemas of every version
#                       from 1.25 on (generated from Kubernetes' OpenAPI documents), so nothing
#                       is downloaded at check time.
#
# Usage: deploy/helm/check.sh        (./natter test runs it as its `helm` step)
set -euo pipefail
HELM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HELM_DIR/../.." && pwd)"
CHART="$HELM_DIR/natter"
NATTER_CACHE=${NATTER_CACHE:-${HOME:-/root}/.cache/natter}
[[ $NATTER_CACHE == /* ]] || NATTER_CACHE=$PWD/$NATTER_CACHE

# The chart's floor (Chart.yaml kubeVersion) and the newest schemas kubernetes-validate has.
KUBE_VERSIONS=(1.31.0 1.37.0)
KUBERNETES_VALIDATE_VERSION=1.37.0

say() { printf '== helm: %s\n' "$*"; }
die() { printf 'helm check: %s\n' "$*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------------

readonly GO_BUILD_FLAGS=(-ldflags=-s\ -w)

helm_version() {
  awk '$1 == "helm.sh/helm/v3" && $2 ~ /^v/ { print $2; exit }' "$HELM_DIR/tools/go.mod"
}

helm_stamp() {
  { cat "$HELM_DIR/tools/go.mod" "$HELM_DIR/tools/go.sum"; printf '%s\n' "${GO_BUILD_FLAGS[@]}"; } |
    sha256sum | cut -c1-32
}

find_go() {
  if [[ -n ${NATTER_GO:-} ]]; then
    [[ -x $NATTER_GO ]] && printf '%s\n' "$NATTER_GO"
  elif command -v go >/dev/null; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    printf '/usr/local/go/bin/go\n'
  else
    return 1
  fi
}

# ensure_helm: prints the path of a helm built from deploy/helm/tools, building it when the
# cached one is missing or stale (a few minutes the first time; then nothing).
ensure_helm() {
  local dir stamp go tmp log
  dir="$NATTER_CACHE/helm-$(helm_version)"
  stamp=$(helm_stamp)
  if [[ -x $dir/helm && -f $dir/.complete && $(<"$dir/.complete") == "$stamp" ]]; then
    printf '%s\n' "$dir/helm"
    return
  fi
  go=$(find_go) || die "building helm needs Go (the go line of deploy/helm/tools/go.mod): none on PATH, in /usr/local/go or NATTER_GO"
  say "building helm $(helm_version) into $dir (first time only)" >&2
  tmp=$dir.tmp.$$
  log=$NATTER_CACHE/build-helm.log
  rm -rf "$tmp" && mkdir -p "$tmp"
  if ! (cd "$HELM_DIR/tools" && GOTOOLCHAIN=local "$go" build "${GO_BUILD_FLAGS[@]}" \
    -o "$tmp/helm" helm.sh/helm/v3/cmd/helm) </dev/null >"$log" 2>&1; then
    rm -rf "$tmp"
    tail -n 40 "$log" >&2
    die "building helm failed (log: $log)"
  fi
  printf '%s\n' "$stamp" >"$tmp/.complete"
  rm -rf "$dir" && mv "$tmp" "$dir"
  printf '%s\n' "$dir/helm"
}

# ensure_validator: prints the path of a Python with kubernetes-validate (and PyYAML).
ensure_validator() {
  local venv="$NATTER_CACHE/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"
  if [[ ! -f $venv/.complete ]]; then
    say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $venv (first time only)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2 || die "pip install kubernetes-validate failed"
    touch "$venv/.complete"
  fi
  printf '%s\n' "$venv/bin/python"
}

HELM=$(ensure_helm)
PY=$(ensure_validator)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

render() { "$HELM" template natter "$CHART" --namespace natter --kube-version "${KUBE_VERSIONS[0]}" "$@"; }

# --- 1-3: lint, render, validate --------------------------------------------------------------

VALUES=("" "$CHART/ci/dev-values.yaml" "$CHART/ci/production-values.yaml")
for values in "${VALUES[@]}"; do
  name=$(basename "${values:-defaults}" .yaml)
  args=(${values:+-f "$values"})
  "$HELM" lint --strict --quiet "$CHART" --kube-version "${KUBE_VERSIONS[0]}" "${args[@]}" >"$OUT/lint.txt" 2>&1 ||
    { cat "$OUT/lint.txt" >&2; die "helm lint failed with $name"; }
  render "${args[@]}" >"$OUT/$name.yaml" || die "helm template failed with $name"
  (cd "$OUT" && "$PY" "$HELM_DIR/check.py" manifests "$name.yaml" "$ROOT" "${KUBE_VERSIONS[@]}") ||
    die "the manifests rendered with $name break the rules above"
done
"$PY" "$HELM_DIR/check.py" settings "$CHART/values.yaml" "$ROOT" || die "values.yaml and the services' settings disagree"
"$PY" "$HELM_DIR/check.py" engines "$HELM_DIR/engines" || die "a file in deploy/helm/engines/ is broken"

# --- 4: what must not render, and what check.py must catch ----------------------------------

refused() {
  local why=$1 expect=$2
  shift 2
  if render "$@" >/dev/null 2>"$OUT/refused.txt"; then
    die "the chart rendered $why; it must refuse"
  fi
  grep -q -- "$expect" "$OUT/refused.txt" ||
    { cat "$OUT/refused.txt" >&2; die "the chart refused $why without saying '$expect'"; }
}
refused "overlapping worker ids" "overlap" --set edge.workerIdStart=1
refused "worker ids past 1023" "outside 0-1023" --set edge.workerIdStart=1000 --set edge.replicas=30
refused "two presence instances" "exactly one presence" --set presence.replicas=2
refused "a chart-owned setting in config" "set by the chart" --set edge.config.NATTER_WORKER_ID=7
refused "local media storage on two replicas" "one replica" --set media.storage=local --set media.replicas=2
refused "a misspelled value (values.schema.json)" "additional properties 'replica'" --set edge.replica=3
refused "a setting that is not Natter's" "additional properties 'LOG'" --set-string common.config.LOG=debug

caught() {
  local why=$1
  shift
  render "$@" >"$OUT/broken.yaml" || die "helm template failed for the broken render ($why)"
  if (cd "$OUT" && "$PY" "$HELM_DIR/check.py" manifests broken.yaml "$ROOT" "${KUBE_VERSIONS[0]}") >/dev/null 2>&1; then
    die "check.py passed a render with $why"
  fi
}
caught "a grace period shorter than the edge's drain" --set edge.terminationGraceExtraSeconds=-10
caught "a database URL as a literal" --set-string edge.config.NATTER_DATABASE_URL=postgres://u:p@db/x
caught "a setting the service does not have" --set-string presence.config.NATTER_SEND_RATE=5/5s

say "chart linted, rendered with ${#VALUES[@]} values files and valid for Kubernetes ${KUBE_VERSIONS[*]}; guards hold"
