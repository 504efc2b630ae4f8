#!/usr/bin/env bash
# Fetch a component's jars from Maven Central into the cache, once:
#   scripts/fetch-jars.sh COMPONENT...   (kafka, cassandra, spark-connectors, registry, jmx-exporter)
# Each component has scripts/maven/COMPONENT.pom.xml; versions come from
# ansible/group_vars/all/versions.yml and are passed as -D properties
# (kafka.version, cassandra.version, spark.version, scc.version, scala.version,
# apicurio.version, jmx_exporter.version). A pom copies its runtime dependencies, or runs the goal its
# header names ("fetch-goal: dependency:unpack" unpacks an archive). Maven runs with
# scripts/maven/settings.xml (Maven Central for every repository a pom names).
# Refetched only when the pom or versions.yml changes.
source "$(dirname "$0")/lib.sh"
need mvn "Maven fetches the service jars from Maven Central"

versions_props() {
  "$VENV/bin/python" - "$ROOT/ansible/group_vars/all/versions.yml" <<'PY'
import sys, yaml
v = yaml.safe_load(open(sys.argv[1]))["correnteza_versions"]
print(f"-Dkafka.version={v['kafka']} -Dcassandra.version={v['cassandra']} -Dspark.version={v['spark']} "
      f"-Dscc.version={v['spark_cassandra_connector']} -Dscala.version={v['scala']} "
      f"-Dapicurio.version={v['apicurio_registry']} -Djmx_exporter.version={v['jmx_exporter']}")
PY
}

props=$(versions_props)
for comp in "$@"; do
  pom="$ROOT/scripts/maven/$comp.pom.xml"
  [ -f "$pom" ] || die "no Maven pom for component '$comp' (expected $pom)"
  out="$CACHE/jars/$comp"
  stamp=$( (cat "$pom"; cat "$ROOT/scripts/maven/$comp.exclude" 2>/dev/null; echo "$props") | sha256sum | cut -c1-16)
  if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
    log "jars: $comp is current ($(find "$out" -name '*.jar' | wc -l) jars)"
    continue
  fi
  t0=$SECONDS
  log "jars: fetching $comp from Maven Central"
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  goal=$(sed -n 's/.*fetch-goal: *\([a-z:-]*\).*/\1/p' "$pom" | head -1)
  goal_args=(dependency:copy-dependencies -DincludeScope=runtime)
  [ -z "$goal" ] || goal_args=("$goal")
  # shellcheck disable=SC2086
  mvn -B -q -s "$ROOT/scripts/maven/settings.xml" -f "$pom" $props "${goal_args[@]}" \
      -DoutputDirectory="$out.tmp" >"$STATE/mvn-$comp.log" 2>&1 \
    || { tail -20 "$STATE/mvn-$comp.log" >&2; die "mvn could not fetch $comp; see $STATE/mvn-$comp.log"; }
  # dependency:unpack keeps "already unpacked" markers in the pom's target/: drop them, so a later fetch
  # into an emptied cache unpacks again.
  rm -rf "$ROOT/scripts/maven/target"
  # A component's pom may list jars to drop after mediation (one per line).
  if [ -f "$ROOT/scripts/maven/$comp.exclude" ]; then
    while read -r pat; do
      [ -z "$pat" ] || [ "${pat#\#}" != "$pat" ] || find "$out.tmp" -name "$pat" -delete
    done <"$ROOT/scripts/maven/$comp.exclude"
  fi
  echo "$stamp" >"$out.tmp/.stamp"
  rm -rf "$out"; mv "$out.tmp" "$out"
  log "jars: $comp: $(find "$out" -name '*.jar' | wc -l) jars, $(du -sh "$out" | cut -f1) in $((SECONDS - t0)) s"
done
