#!/usr/bin/env bash
# Idempotent setup of everything the app, the tests and the benchmarks need on a
# fresh Debian machine: OCR engine + Japanese data and fonts (apt), headless Chromium and its
# WebDriver for the dashboard's browser tests (apt, Debian's build: nothing downloaded by the tests),
# a Python 3.11 virtualenv (pip), and the Azurite storage emulator plus axe-core (npm). Re-runs are cheap:
# each step is skipped when its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# chi-sim: Chinese dashboard labels (sales OCR); IPA Gothic/Mincho, VL Gothic, Sawarabi Mincho, M+, Motoya L Maruberi, DejaVu: faces for the screenshot generator; chromium + driver: the dashboard's browser tests
apt_packages=(tesseract-ocr tesseract-ocr-jpn tesseract-ocr-chi-sim fonts-noto-cjk fonts-ipafont-gothic fonts-ipafont-mincho fonts-vlgothic fonts-sawarabi-mincho fonts-mplus fonts-motoya-l-maruberi fonts-dejavu-core chromium chromium-driver)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "setup: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.stamp-$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: pip install -r requirements-dev.txt"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  rm -f .venv/.stamp-*; touch "$stamp"
fi

nstamp="node_modules/.stamp-$(sha256sum package.json package-lock.json 2>/dev/null | sha256sum | cut -c1-16)"
if [ ! -f "$nstamp" ]; then
  echo "setup: npm install (azurite, axe-core)"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
  touch "$nstamp"
fi
echo "setup: ready"
