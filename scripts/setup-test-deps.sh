#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the tests need (scripts/test-deps.txt, the one list), as
# root. Idempotent: installs only what is missing, and nothing at all when everything is there.
# The daemons these packages ship (prometheus, nginx, haproxy, …: the `disable=` units of the list)
# are not started and not left enabled when this script installs them: the tests run their own,
# on loopback, by hand. Packages that were already installed are left exactly as they were.
# `--list` prints the package names and changes nothing.
set -euo pipefail
cd "$(dirname "$0")"

packages=()
declare -A units_of=()
while read -r line; do
  read -r -a fields <<<"${line%%#*}" || true
  ((${#fields[@]})) || continue
  package=${fields[0]}
  packages+=("$package")
  for field in "${fields[@]:1}"; do
    [[ $field == disable=* ]] && units_of[$package]+="${field#disable=} "
  done
done <test-deps.txt

if [[ ${1:-} == --list ]]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "setup-test-deps: run as root: sudo $0" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup-test-deps: all ${#packages[@]} packages installed"
  exit 0
fi
echo "setup-test-deps: installing ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
# Keep package scripts from starting the services they install (Debian's policy-rc.d protocol;
# an existing policy is left as it is).
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

units=()
for p in "${missing[@]}"; do
  read -r -a more <<<"${units_of[$p]:-}" || true
  units+=("${more[@]}")
done
if ((${#units[@]})); then
  echo "setup-test-deps: leaving ${units[*]} disabled"
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now "${units[@]}" || true
  else
    systemctl disable "${units[@]}" 2>/dev/null || true
  fi
fi
echo "setup-test-deps: done"
