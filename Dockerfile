# syntax=docker/dockerfile:1
# One image for the API, the worker and the simulators: the command picks which (compose.yaml,
# deploy/k8s/). Build:  docker build --build-arg BASE_IMAGE=python:3.11-slim-bookworm -t clearport .
#
# BASE_IMAGE is any Debian bookworm with Python 3.11 and its venv module: the official
# python:3.11-slim-bookworm, or the base `make image` makes with debootstrap where no registry
# is reachable (tools/image.sh). Both stages use it, so the virtual environment built in the
# first finds the same interpreter in the second.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
SHELL ["/bin/sh", "-eu", "-c"]
# Behind a TLS-intercepting proxy, give its CA bundle as the build secret `ca-certificates`
# (`--secret id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt`): it is used for the
# downloads and never stored in a layer.
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi; \
    python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
# The locked dependencies first: a change to the code alone reuses this layer.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export SSL_CERT_FILE=/run/secrets/ca-certificates; fi; \
    /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python python3
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export SSL_CERT_FILE=/run/secrets/ca-certificates; fi; \
    /opt/uv/bin/uv sync --frozen --no-dev --no-editable --python python3

FROM ${BASE_IMAGE} AS runtime
# No compilers, no uv, no sources: the virtual environment and a user to run it.
RUN groupadd --system --gid 10001 clearport \
    && useradd --system --uid 10001 --gid clearport --home-dir /var/lib/clearport \
       --create-home --shell /usr/sbin/nologin clearport
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CLEARPORT_DATA_DIR=/var/lib/clearport \
    CLEARPORT_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/clearport
EXPOSE 8000
# The API's liveness; compose and Kubernetes give the worker and the simulators their own.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["clearport"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
