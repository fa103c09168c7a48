# Redis from Debian's packages on the local base (bookworm: Redis 7.0). docker-compose.yml
# runs it with the append-only file on, data in /data.
ARG BASE_IMAGE=correli-base:bookworm
FROM ${BASE_IMAGE}
RUN --mount=type=secret,id=ca \
    set -eu; \
    ca=""; [ -s /run/secrets/ca ] && ca="-o Acquire::https::CAInfo=/run/secrets/ca"; \
    apt-get $ca update -q; \
    apt-get $ca install -y -q --no-install-recommends redis-server; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log; \
    mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--appendonly", "yes", "--dir", "/data", "--protected-mode", "no"]
