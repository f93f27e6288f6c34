#!/usr/bin/env bash
# Debian packages the project needs (Debian's chromium for the browser tools: Playwright's
# own browser download cannot work here; postgresql for the trace store's PostgreSQL tests,
# which start a throwaway cluster with its initdb and pg_ctl). Installs only what is missing;
# needs root.
set -euo pipefail
PACKAGES=(chromium fonts-dejavu-core postgresql)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
