#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian/Ubuntu machine, then runs it.
# Needs root (or sudo) for apt-get; the real Fashion-MNIST comes from Debian's package.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null

python3 -m pip install -q --disable-pip-version-check -e ".[test]"

# Every test, the slow ones included (`-m ""` lifts pyproject's "not slow"; a -m given
# to this script wins over it). pytest exits 5 when it collects no tests; `set -e` turns
# that into a failure too.
python3 -m pytest -q -m "" "$@"
