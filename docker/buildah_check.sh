#!/bin/bash
# Build the PAIS image for real without a Docker engine and run it: the check to repeat
# after a change to the image (bentofile*, docker/, deploy/entrypoint.py, requirements).
#
#   docker/buildah_check.sh base     # Debian bookworm made with debootstrap, as a local image
#   docker/buildah_check.sh build    # bento -> BentoML's build context -> buildah bud
#   docker/buildah_check.sh run      # buildah run --isolation chroot: probe REST and SageMaker
#
# Needs root, buildah and debootstrap (apt-get install buildah debootstrap) and a model store
# (make models). Registries are out of reach in the sandbox this was written in, so the base
# is debootstrapped instead of pulled: the GPU bento is built without docker.cuda_version
# (same Python packages, CUDA torch wheels included; Debian base instead of nvidia/cuda,
# Python 3.11 from Debian as in the bento). BUILD_VOLUMES adds `-v` mounts to the build,
# e.g. a proxy's CA bundle and pip/uv settings; nothing of them lands in the image.
set -euo pipefail
WORK=${WORK:-/var/tmp/pais-image}
BASE=${BASE:-localhost/pais-base:bookworm}
IMAGE=${IMAGE:-localhost/pais:gpu-debian}
PORT=${PORT:-18080}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=$REPO/.venv/bin/python
export BENTOML_HOME=${BENTOML_HOME:-$REPO/.bentoml}
mkdir -p "$WORK/tmp"

base() {
    rootfs=$WORK/rootfs/bookworm
    [ -d "$rootfs" ] || debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian
    ctr=$(buildah from scratch)
    cp -a "$rootfs"/. "$(buildah mount "$ctr")"/
    buildah umount "$ctr"
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --os linux --arch amd64 "$ctr"
    buildah commit --rm "$ctr" "$BASE"
}

build() {
    sed -e '/cuda_version:/d' -e 's/variant: gpu  # variant/variant: gpu-debian/' \
        "$REPO/bentofile.yaml" > "$WORK/bentofile.gpu-debian.yaml"
    tag=$(cd "$REPO" && "$REPO/.venv/bin/bentoml" build -f "$WORK/bentofile.gpu-debian.yaml" . \
        --output tag | tail -1 | sed 's/^__tag__://')
    rm -rf "$WORK/context"
    # The context `bentoml containerize` builds (bento + models, Dockerfile regenerated
    # without BuildKit), written out so buildah can be given the flags it needs here. Run
    # from the temporary directory: BentoML refuses the template elsewhere (see Makefile).
    (cd "$("$PY" -c 'import tempfile; print(tempfile.gettempdir())')" && "$PY" -c '
import shutil, sys
from bentoml._internal.configuration.containers import BentoMLContainer
from bentoml._internal.container import construct_containerfile
bento = BentoMLContainer.bento_store.get().get(sys.argv[1])
with construct_containerfile(bento, enable_buildkit=False) as (context, _):
    shutil.copytree(context, sys.argv[2], symlinks=True)
' "$tag" "$WORK/context")
    start=$(date +%s)
    # shellcheck disable=SC2086  # BUILD_VOLUMES is a list of -v flags
    TMPDIR=$WORK/tmp BUILDAH_FORMAT=oci buildah bud --isolation chroot --network host --layers \
        --from "$BASE" -t "$IMAGE" -f "$WORK/context/env/docker/Dockerfile" ${BUILD_VOLUMES:-} \
        "$WORK/context"
    echo "bento $tag built into $IMAGE in $(($(date +%s) - start)) s"
    buildah images "$IMAGE"
}

wait_for() {  # wait_for URL: seconds until it answers 200
    start=$(date +%s.%N)
    for _ in $(seq 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" = 200 ] && break
        sleep 1
    done
    echo "$1 answered 200 after $(echo "$(date +%s.%N) - $start" | bc) s"
}

run() {
    "$PY" -c "import skimage.data as d, PIL.Image as I; I.fromarray(d.chelsea()).save('$WORK/cat.jpg'); I.fromarray(d.coffee()).save('$WORK/coffee.jpg')"
    ctr=$(buildah from "$IMAGE")
    trap 'buildah rm "$ctr" >/dev/null' EXIT
    entry=(python /home/bentoml/bento/src/deploy/entrypoint.py)
    buildah inspect --type image --format '{{.OCIv1.Config.Entrypoint}} user={{.OCIv1.Config.User}}{{println}}' "$IMAGE"

    echo "== as built (PAIS_DEVICE=cuda): on a host without a usable GPU it must stop at once"
    if refused=$(timeout 120 buildah run --isolation chroot --env SAGEMAKER_BIND_TO_PORT="$PORT" "$ctr" -- \
        "${entry[@]}" serve 2>&1); then
        echo "FAILED: it started"; exit 1
    fi
    grep "pais preflight" <<<"$refused" || { echo "FAILED: no preflight message"; exit 1; }

    echo "== serve (SageMaker's contract), PAIS_DEVICE=cpu"
    buildah run --isolation chroot --env PAIS_DEVICE=cpu --env SAGEMAKER_BIND_TO_PORT="$PORT" "$ctr" -- \
        "${entry[@]}" serve > "$WORK/serve.log" 2>&1 &
    runner=$!
    wait_for "http://127.0.0.1:$PORT/ping"
    invoke() { curl -s -H "X-Amzn-SageMaker-Custom-Attributes: task=$1" "${@:2}" "http://127.0.0.1:$PORT/invocations"; echo; }
    invoke "classify;top_k=3" -H 'Content-Type: image/jpeg' --data-binary "@$WORK/cat.jpg"
    invoke detect -H 'Content-Type: image/jpeg' --data-binary "@$WORK/coffee.jpg"
    invoke translate -H 'Content-Type: application/json' \
        -d '{"texts": ["I would like to buy a new car."], "source": "en", "target": "es"}'
    invoke recommend -H 'Content-Type: application/json' -d '{"user_id": "196", "k": 3}'
    invoke synthesize -H 'Content-Type: application/json' -d '{"text": "Hello."}' -o "$WORK/hello.wav"
    file "$WORK/hello.wav"
    server=$(pgrep -f "bentoml serve.*--port $PORT" | head -1)
    start=$(date +%s.%N)
    kill -TERM "$server"
    wait "$runner" || true
    echo "SIGTERM: stopped after $(echo "$(date +%s.%N) - $start" | bc) s"
    if pgrep -f service.gateway:PAIS; then echo "FAILED: processes left"; exit 1; fi
}

"${1:?base, build or run}"
