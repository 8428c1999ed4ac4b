#!/bin/sh
# Make a Java runtime holding only the modules multi-model-server needs (builder stage); the final
# image has it as /opt/java.
#
#   make-java-runtime.sh [DEST]       # default DEST: /opt/java
#
# The modules come from jdeps on MMS's own jar (mms/frontend/model-server.jar, inside the
# multi-model-server wheel just installed in /opt/venv): its static dependencies, less the modules
# that only code MMS never runs refers to (EXCLUDED, each with its reason below). jlink then
# writes a runtime with them alone: no compiler, no jlink/jdeps, no jmods, headers or man pages.
# MMS's JVM options stay where sagemaker-inference sets them (vmargs=-XX:-UseContainerSupport in
# /etc/sagemaker-mms.properties); the JVM finds this runtime through JAVA_HOME.
set -eu
dest="${1:-/opt/java}"
python=/opt/venv/bin/python
# java.compiler: log4j's PluginProcessor, an annotation processor that runs inside javac.
# java.rmi:      log4j's LogEventProxy, which serialises events for network appenders; the log
#                configuration sagemaker-inference gives MMS writes to the console and to files.
# jdk.sctp:      netty's SCTP channels; MMS listens on TCP and Unix sockets.
EXCLUDED="java.compiler java.rmi jdk.sctp"

jar="$("$python" -c 'import mms, os; print(os.path.join(os.path.dirname(mms.__file__), "frontend", "model-server.jar"))')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The jar is a fat jar that also carries gson's module-info.class: without removing it, jdeps
# would analyse the whole jar as the module com.google.gson.
"$python" - "$jar" "$work/mms.jar" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as source, zipfile.ZipFile(sys.argv[2], "w") as copy:
    for item in source.infolist():
        if not item.filename.endswith("module-info.class"):
            copy.writestr(item, source.read(item))
PY
found="$(jdeps --multi-release 17 --ignore-missing-deps --print-module-deps "$work/mms.jar")"
modules="$(echo "$found" | tr ',' '\n' | grep -vxF "$(echo "$EXCLUDED" | tr ' ' '\n')" | paste -sd, -)"
echo "jdeps on $(basename "$jar"): $found"
echo "jlink --add-modules $modules (left out: $EXCLUDED)"
mkdir -p "$(dirname "$dest")"
jlink --add-modules "$modules" --output "$dest" \
  --strip-debug --no-man-pages --no-header-files --compress=2
"$dest/bin/java" -version 2>&1 | head -1
echo "Java runtime in $dest: $(du -sh "$dest" | cut -f1), modules: $("$dest/bin/java" --list-modules | cut -d@ -f1 | paste -sd' ' -)"
