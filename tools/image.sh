#!/usr/bin/env bash
# `make image`: lint the Dockerfile, compose.yaml and the Kubernetes manifests; then build the
# image with podman and check its filesystem. CI runs it (.ci/run); see README "The container
# image" for what is verified and how.
#
# No registry is reachable here and no container engine runs, so:
# - the base image is made locally (debootstrap of Debian bookworm with python3, then
#   `podman import`) and kept in podman's image store: later runs reuse it;
# - `podman build --isolation=chroot` builds (the default isolation needs what is missing here),
#   in Docker's format (OCI images have no HEALTHCHECK);
# - containers cannot be run (podman run fails on setrlimit), so the image's filesystem is
#   mounted (`podman image mount`) and the checks run in it with chroot: `clearport --help` and
#   `clearport db upgrade` against a fresh database as the image's non-root user, no compilers,
#   the HEALTHCHECK and the user in the image's configuration.
# Without root, or without podman and debootstrap (installed with apt-get when root can), the
# lints still run and the build is skipped, saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
BASE=localhost/clearport-base:bookworm
IMAGE=localhost/clearport:dev
PG=${CLEARPORT_IMAGE_PG:-postgresql://postgres@127.0.0.1:5432/postgres}

echo "image: hadolint Dockerfile"
"$VENV/bin/hadolint" Dockerfile
echo "image: compose.yaml against the compose specification"
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml
echo "image: kubernetes-validate deploy/k8s"
"$VENV/bin/kubernetes-validate" --strict --quiet deploy/k8s/*.yaml

skip() {
    echo "image: build SKIPPED: $*"
    exit 0
}

[ "$(id -u)" = 0 ] || skip "needs root (podman build --isolation=chroot, chroot into the image)"
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
    if command -v apt-get >/dev/null; then
        echo "image: installing podman and debootstrap (Debian packages)"
        (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman debootstrap) \
            >/tmp/clearport-image-apt.log 2>&1 || true
    fi
fi
command -v podman >/dev/null || skip "podman is not installed"
command -v debootstrap >/dev/null || skip "debootstrap is not installed"

# The Debian mirror this machine's apt uses (never a hard-coded host).
mirror() {
    local uri
    uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/debian.sources | head -n1 | awk '{print $2}')
    [ -n "$uri" ] || uri=$(grep -hs '^deb ' /etc/apt/sources.list | grep -v security | head -n1 | awk '{print $2}')
    echo "$uri"
}

if podman image exists "$BASE"; then
    echo "image: base $BASE (cached)"
else
    echo "image: making the base $BASE with debootstrap"
    root=$(mktemp -d /var/tmp/clearport-base.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$root" "$(mirror)" >/tmp/clearport-debootstrap.log 2>&1 \
        || { tail -20 /tmp/clearport-debootstrap.log; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | podman import --quiet --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
    rm -rf "$root"
    trap - EXIT
fi

echo "image: podman build $IMAGE"
secret=()
# A TLS-intercepting proxy's CA (as on this machine) reaches the build as a secret only.
[ -s /etc/ssl/certs/ca-certificates.crt ] \
    && secret=(--secret id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt)
podman build --isolation=chroot --format docker --layers --build-arg "BASE_IMAGE=$BASE" "${secret[@]}" \
    -t "$IMAGE" . >/tmp/clearport-image-build.log 2>&1 \
    || { tail -40 /tmp/clearport-image-build.log; exit 1; }

echo "image: checking $IMAGE"
fail() {
    echo "image: FAILED: $*" >&2
    exit 1
}
config=$(podman image inspect "$IMAGE" --format '{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.Healthcheck.Test}}')
case "$config" in
    "10001:10001|[\"clearport\"]|"*healthz*) ;;
    *) fail "user, entrypoint or HEALTHCHECK not as built: $config" ;;
esac

mnt=$(podman image mount "$IMAGE")
db=""
cleanup() {
    if [ -n "$db" ]; then
        "$VENV/bin/python" - "$PG" "$db" <<'PY' || true
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as c:
    c.execute(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
PY
    fi
    podman image umount "$IMAGE" >/dev/null || true
    # The previous builds' untagged images: without this every CI run would keep ~1 GB more.
    # The uv download cache (a build cache mount) survives, so the next build stays quick.
    podman image prune -f >/dev/null || true
}
trap cleanup EXIT

as_app() {
    chroot --userspec=10001:10001 "$mnt" /usr/bin/env -i PATH=/app/.venv/bin:/usr/bin:/bin \
        HOME=/var/lib/clearport CLEARPORT_DATA_DIR=/var/lib/clearport "$@"
}
[ "$(as_app /usr/bin/id -un)" = clearport ] || fail "uid 10001 is not the clearport user"
grep -q '^clearport:x:10001:10001:' "$mnt/etc/passwd" || fail "no clearport user in /etc/passwd"
for compiler in gcc cc c++ g++ clang make; do
    [ ! -e "$mnt/usr/bin/$compiler" ] || fail "a compiler in the runtime image: $compiler"
done
[ ! -e "$mnt/opt/uv" ] && [ ! -e "$mnt/src" ] || fail "build tools or sources in the runtime image"
as_app clearport --help >/dev/null || fail "clearport --help"
echo "image: clearport --help ok, as $(as_app /usr/bin/id -un) (uid $(as_app /usr/bin/id -u))"

if "$VENV/bin/python" -c "import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$PG" 2>/dev/null; then
    db="clearport_image_$$"
    "$VENV/bin/python" - "$PG" "$db" <<'PY'
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as c:
    c.execute(f'CREATE DATABASE "{sys.argv[2]}"')
PY
    url="${PG%/*}/$db"
    as_app DATABASE_URL="$url" clearport db upgrade || fail "clearport db upgrade"
    head=$("$VENV/bin/python" -c "import sys, psycopg; print(psycopg.connect(sys.argv[1]).execute('SELECT version_num FROM alembic_version').fetchone()[0])" "$url")
    echo "image: clearport db upgrade ok (schema $head)"
else
    echo "image: clearport db upgrade SKIPPED: no PostgreSQL at $PG"
fi
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
echo "image: $IMAGE ok ($((size / 1024 / 1024)) MiB)"
