# The S3-compatible object store of the compose stack: moto's standalone S3 server (Apache-2.0;
# S3's HTTP protocol with multipart uploads and ranged reads) on the local base, from
# store-requirements.lock (hashes checked). It keeps objects in memory and in temporary files
# under /data (a volume): a TEST and DEMO store, emptied when its container restarts.
# Production points CORRELI_S3_* at MinIO, AWS S3 or Ceph RGW instead (docs/deployment.md).
# The host CA and pip settings arrive as BuildKit secrets for the downloading steps only.
ARG BASE_IMAGE=correli-base:bookworm
FROM ${BASE_IMAGE}
RUN --mount=type=secret,id=ca \
    set -eu; \
    pkgs=""; \
    command -v python3 >/dev/null || pkgs="python3"; \
    if [ -n "$pkgs" ] || ! python3 -c "import ensurepip, venv" 2>/dev/null; then \
      ca=""; [ -s /run/secrets/ca ] && ca="-o Acquire::https::CAInfo=/run/secrets/ca"; \
      apt-get $ca update -q; \
      apt-get $ca install -y -q --no-install-recommends $pkgs python3-venv; \
      rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log; \
    fi; \
    python3 -m venv /opt/store
COPY deploy/images/store-requirements.lock /tmp/store-requirements.lock
RUN --mount=type=secret,id=ca --mount=type=secret,id=pipconf \
    --mount=type=cache,target=/root/.cache/pip \
    set -eu; \
    [ -s /run/secrets/pipconf ] && export PIP_CONFIG_FILE=/run/secrets/pipconf; \
    /opt/store/bin/pip install -q --disable-pip-version-check --require-hashes --no-deps \
      -r /tmp/store-requirements.lock; \
    find /opt/store -name __pycache__ -prune -exec rm -rf {} +; \
    useradd --system --uid 1001 --home /data store; \
    mkdir -p /data/tmp && chown -R store /data
COPY deploy/images/store-entrypoint.py /usr/local/bin/store-entrypoint
ENV PATH=/opt/store/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/data/tmp \
    MOTO_PORT=9000
USER store
WORKDIR /data
EXPOSE 9000
ENTRYPOINT ["python", "/usr/local/bin/store-entrypoint"]
