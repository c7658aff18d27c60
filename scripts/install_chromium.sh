#!/usr/bin/env bash
# Headless Chromium for the console's browser test (tests/integration/console): Debian's
# `chromium` package, installed when it is missing and this runs as root with apt-get.
# It never fails the command it is part of: without Chromium that one test module is
# skipped, and says why.
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: not root or no apt-get; the console's browser test will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium >/dev/null 2>&1 \
  || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } \
  || echo "install_chromium: apt-get could not install chromium; the browser test will be skipped" >&2
exit 0
