#!/usr/bin/env bash
# Validates the deployment files under deploy/ (`make deploy-check`, part of `make test`):
#   - the kustomize base renders (kubectl kustomize) and every object passes the
#     Kubernetes schema, strictly, plus the essentials (scripts/check_deploy.py);
#   - the compose file and the Dockerfile have what docs/DEPLOY.md promises, and
#     `docker compose config` (or docker-compose) accepts the compose file;
#   - the systemd unit passes `systemd-analyze verify` with no warning, and the example
#     node configs load as micro-node loads them (a cargo test: node::config).
# Needs python3 with kubernetes-validate (deploy/requirements.txt; .ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize deploy/kubernetes >"$work/rendered.yaml"
else
  # Without kubectl, check the resources as written (kustomize only adds labels and
  # the namespace to them).
  echo "kubectl not found: checking deploy/kubernetes without kustomize" >&2
  for file in deploy/kubernetes/*.yaml; do
    [[ $(basename "$file") == kustomization.yaml ]] && continue
    cat "$file"
    echo "---"
  done >"$work/rendered.yaml"
fi
python3 scripts/check_deploy.py "$work/rendered.yaml"

# Compose's own schema check: the plugin where Docker has it, else Debian's
# docker-compose (1.29, which .ci/run installs); both refuse unknown keys.
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  compose=()
  echo "docker compose not installed: compose file checked by check_deploy.py only" >&2
fi
if ((${#compose[@]})); then
  MICRO_ADMIN_PASSWORD=check "${compose[@]}" -f deploy/docker/docker-compose.yml config --quiet
  echo "${compose[*]} config: ok"
fi

if command -v systemd-analyze >/dev/null 2>&1; then
  # verify insists that ExecStart exists: point it at a binary that does.
  sed 's#/usr/local/bin/micro-node#/bin/true#' deploy/systemd/micro-node.service \
    >"$work/micro-node.service"
  out=$(systemd-analyze verify "$work/micro-node.service" 2>&1) || {
    echo "$out" >&2
    exit 1
  }
  if [[ -n "$out" ]]; then
    echo "systemd-analyze verify warned: $out" >&2
    exit 1
  fi
  echo "systemd-analyze verify micro-node.service: ok"
else
  echo "systemd-analyze not installed: unit file not verified" >&2
fi
