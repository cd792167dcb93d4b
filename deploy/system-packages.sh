#!/usr/bin/env bash
# The Debian packages the full test suite needs beside Python: Java 17 and Maven (the Apache
# Kafka cluster of deploy/kafka/, whose jars Maven fetches once into ~/.cache/nudge), curl (the
# README's curl example is tested), chromium (the cockpit's browser tests; Playwright never
# downloads a browser), PostgreSQL (the tests start their own server in a temp dir) and
# iproute2 (`ip netns`: the separate-hosts test puts each worker in a network namespace).
# Installs whatever is missing when run as root; otherwise says what to install.
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ -x /usr/bin/chromium ] || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "the tests need these Debian packages: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
