#!/usr/bin/env bash
# Validates the Kubernetes manifests of this folder offline: each object
# against the Kubernetes 1.37 schemas (kubernetes-validate --strict: unknown
# fields are errors too), then their consistency with each other
# (check_consistency.py: names, ports, secret keys, volumes and files that
# one object refers to exist in another; --threads matches the CPU request),
# and that the consistency check catches seeded mistakes. No cluster is
# needed, and none is used.
#
#   deploy/k8s/validate.sh
#
# kubernetes-validate is installed from the Python package index into a
# virtual environment under target/ when missing (KUBERNETES_VALIDATE_VENV
# picks another place). Every check's failure fails the script (pipefail).
set -euo pipefail
cd "$(dirname "$0")"

KUBERNETES_VERSION=${KUBERNETES_VERSION:-1.37.0}
VENV=${KUBERNETES_VALIDATE_VENV:-../../target/k8s-venv}
say() { printf '[k8s] %s\n' "$*"; }

if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  say "installing kubernetes-validate into $VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian's python3 has venv in a package of its own.
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || { echo "validate: python3 -m venv fails; install python3-venv" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
fi
say "kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | tail -n 1), schemas of Kubernetes $KUBERNETES_VERSION"

manifests=(coordinator.yaml worker-deployment.yaml worker-job.yaml secrets.template.yaml)
"$VENV/bin/kubernetes-validate" --strict --kubernetes-version "$KUBERNETES_VERSION" "${manifests[@]}" 2>&1 |
  sed 's/^/  /'

say "consistency between the objects"
"$VENV/bin/python" check_consistency.py "${manifests[@]}" | sed 's/^/  /'
"$VENV/bin/python" check_consistency.py --self-test "${manifests[@]}" | sed 's/^/  /'

# No real secret may be committed: every secret value is a placeholder.
if grep -E -v '^\s*#' secrets.template.yaml | grep -E '(BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)|(worker|submit|read) [0-9a-f]{16,})'; then
  echo "validate: secrets.template.yaml holds what looks like a real key or token" >&2
  exit 1
fi
say "manifests valid and consistent (validated offline only: no cluster ran them here)"
