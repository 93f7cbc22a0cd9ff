#!/usr/bin/env bash
# Fetches ElasticMQ (an SQS-compatible queue) and its classpath from Maven Central
# into the tool cache. Prints the classpath directory. Idempotent.
set -euo pipefail
VERSION="${ELASTICMQ_VERSION:-1.6.16}"
CACHE="${LOGSERVER_CACHE_DIR:-$HOME/.cache/logserver}"
DIR="$CACHE/elasticmq-$VERSION"
if [ -f "$DIR/.complete" ]; then echo "$DIR/lib"; exit 0; fi

fail() {
  echo "provision-elasticmq: step '$1' failed." >&2
  echo "  Instead, point logserver at an existing SQS endpoint:" >&2
  echo "  export LOGSERVER_SQS_ENDPOINT_URL=http://host:9324" >&2
  exit 1
}
command -v java >/dev/null || fail "find java on PATH (install a JDK >= 8)"
command -v mvn >/dev/null || fail "find mvn on PATH (apt-get install maven)"
mkdir -p "$DIR"
cat > "$DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.logserver</groupId><artifactId>elasticmq-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.elasticmq</groupId><artifactId>elasticmq-server_2.13</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
echo "provision-elasticmq: fetching ElasticMQ $VERSION from Maven Central (first time only)" >&2
mvn -q -B -f "$DIR/pom.xml" dependency:copy-dependencies -DoutputDirectory="$DIR/lib" >&2 \
  || fail "mvn dependency:copy-dependencies"
touch "$DIR/.complete"
echo "$DIR/lib"
