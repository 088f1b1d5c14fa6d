#!/usr/bin/env bash
# Installs what a fresh machine lacks for Flowcase, and nothing twice:
#   apt: Java 17, Maven, PostgreSQL server, Node.js/npm, Chromium   (when run as root and missing)
#   uv and the Python workspace (every library and service, editable)
#   the Kafka broker's jars, resolved by Maven from Maven Central
#   the official AsyncAPI specification schemas (npm), for the contract tests
set -euo pipefail
cd "$(dirname "$0")/../.."
state=.flowcase
ASYNCAPI_SPECS_VERSION=6.11.1
mkdir -p "$state/tools"

missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v npm >/dev/null || missing+=(npm)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)  # the governance dashboard's browser test
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${missing[*]} (install them with apt-get as root)" >&2
    exit 1
  fi
  echo "installing ${missing[*]} …"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v uv >/dev/null; then
  echo "installing uv …"
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
uv sync --all-packages --quiet

classpath="$state/kafka/classpath.txt"
if [ ! -s "$classpath" ] || [ deploy/kafka/pom.xml -nt "$classpath" ]; then
  echo "resolving the Kafka jars with Maven …"
  mkdir -p "$state/kafka"
  mvn -q -B -f deploy/kafka/pom.xml dependency:build-classpath "-Dmdep.outputFile=$PWD/$classpath"
fi

specs="$state/tools/node_modules/@asyncapi/specs/package.json"
if [ ! -f "$specs" ] || ! grep -q "\"version\": \"$ASYNCAPI_SPECS_VERSION\"" "$specs"; then
  echo "installing the AsyncAPI specification schemas …"
  npm install --silent --no-audit --no-fund --prefix "$state/tools" "@asyncapi/specs@$ASYNCAPI_SPECS_VERSION" >/dev/null
fi
