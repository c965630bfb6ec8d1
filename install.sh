#!/usr/bin/env bash
# Installs everything whynoip needs on a Debian machine: the Debian packages listed in
# packaging/debian-packages*.txt and a Python virtual environment in .venv with whynoip
# and its pinned dependencies. Idempotent; run as root (the lab needs root anyway).
#   ./install.sh            lab + tests
#   ./install.sh --bench    also what the benchmarks compare against (tshark)
set -euo pipefail
cd "$(dirname "$0")"

lists=(packaging/debian-packages.txt)
[[ "${1:-}" == "--bench" ]] && lists+=(packaging/debian-packages-bench.txt)

if [[ $(id -u) -ne 0 ]]; then
    echo "install.sh: run as root (Debian packages, network namespaces)" >&2
    exit 1
fi

mapfile -t wanted < <(grep -hv '^\s*#' "${lists[@]}" | sed '/^\s*$/d')
missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    # Packages such as rabbitmq-server and openssh-server start a system service when
    # installed; whynoip starts its own private instances and wants none. A policy-rc.d
    # that refuses every start holds them off during the install (and only then).
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod +x "$policy"
        own_policy=1
    fi
    trap '[[ $own_policy == 1 ]] && rm -f "$policy"' EXIT
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
echo "whynoip installed: .venv/bin/whynoip"
