#!/usr/bin/env bash
# Builds the static binary and runs one real workflow step end to end in a temporary root,
# the way a pod does: `init` puts the binary and the template into the shared folder, the
# emissary runs the step with capture on and saves its outputs, and we read the results the
# way the wait container does.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r bin size < <(scripts/build.sh | tail -n 1)

work=$(mktemp -d /tmp/argoexec-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/var-run-argo        # stands for the pod's /var/run/argo emptyDir
data=$work/data                # stands for the step's own file system
mkdir -p "$data"

template=$(cat <<JSON
{"name":"hello","outputs":{"parameters":[{"name":"message","valueFrom":{"path":"$data/message.txt"}}],
 "artifacts":[{"name":"report","path":"$data/report/"}]},
 "container":{"name":"","image":"busybox","command":["sh","-c"]}}
JSON
)

echo "== init: copy the binary and write the template into $root"
ARGOEXEC_VAR_RUN_ARGO=$root ARGO_TEMPLATE=$template "$bin" init
ls -l "$root"

echo
echo "== main container: $root/argoexec emissary -- sh -c ..."
set +e
ARGOEXEC_VAR_RUN_ARGO=$root ARGOEXEC_TERMINATION_LOG=$work/termination-log \
ARGO_CONTAINER_NAME=main ARGO_INCLUDE_SCRIPT_OUTPUT=true \
    "$root/argoexec" emissary --loglevel info --log-format text -- sh -c "
        echo 'hello from the step'
        echo 'a warning on stderr' >&2
        echo 'the answer is 42' > '$data/message.txt'
        mkdir -p '$data/report/sub'
        date -u > '$data/report/date.txt'
        echo nested > '$data/report/sub/n.txt'
        exit 3"
rc=$?
set -e

echo
echo "== what the wait container reads"
echo "process exit code:        $rc"
echo "ctr/main/exitcode:        $(cat "$root/ctr/main/exitcode")"
echo "ctr/main/stdout:          $(cat "$root/ctr/main/stdout")"
echo "ctr/main/combined:"
sed 's/^/    /' "$root/ctr/main/combined"
echo "outputs/parameters$data/message.txt: $(cat "$root/outputs/parameters$data/message.txt")"
echo "outputs/artifacts$data/report.tgz:"
tar -tvzf "$root/outputs/artifacts$data/report.tgz" | sed 's/^/    /'
echo
echo "static binary: $bin, $size bytes"
[[ $rc == 3 && $(cat "$root/ctr/main/exitcode") == 3 ]]
