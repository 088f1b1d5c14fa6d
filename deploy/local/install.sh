#!/usr/bin/env bash
# Installs what a fresh machine lacks for Flowcase, and nothing twice:
#   apt: Java 17, Maven, PostgreSQL server, Node.js/npm, Chromium, curl and jq for the docs'
#        examples, and nginx for the compose gateway's checks   (when run as root and missing)
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
command -v curl >/dev/null || missing+=(curl)  # the docs' examples (tests/docs)
command -v jq >/dev/null || missing+=(jq)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)  # the compose gateway's config (tests/deploy)
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

# compose-check (deploy/compose-check): the Compose specification's reference loader, compose-go,
# from the Go module proxy, for the static checks of docker-compose.yml in tests/deploy.
compose_check="$state/tools/bin/compose-check"
if [ ! -x "$compose_check" ] || [ -n "$(find deploy/compose-check -type f -newer "$compose_check")" ]; then
  if command -v go >/dev/null; then
    echo "building compose-check (compose-go) …"
    mkdir -p "$state/tools/bin"
    (cd deploy/compose-check && go build -o "../../$compose_check" .)
  else
    echo "warning: no Go toolchain: the docker-compose.yml checks of tests/deploy will be skipped" >&2
  fi
fi

# kustomize renders deploy/k8s for the manifest checks: kubectl's built-in one where kubectl is
# installed, else kustomize built from the Go module proxy.
if ! command -v kubectl >/dev/null && [ ! -x "$state/tools/bin/kustomize" ] && command -v go >/dev/null; then
  echo "building kustomize …"
  GOBIN="$PWD/$state/tools/bin" go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0
fi
