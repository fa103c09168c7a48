# PostgreSQL from Debian's packages on the local base (bookworm: PostgreSQL 15). Same
# interface as the upstream postgres image for docker-compose.yml: POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB create the role and database on first start; data in
# /var/lib/postgresql/data; pg_isready on PATH for the healthcheck.
ARG BASE_IMAGE=correli-base:bookworm
FROM ${BASE_IMAGE}
RUN --mount=type=secret,id=ca \
    set -eu; \
    ca=""; [ -s /run/secrets/ca ] && ca="-o Acquire::https::CAInfo=/run/secrets/ca"; \
    mkdir -p /etc/postgresql-common/createcluster.d; \
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/correli.conf; \
    apt-get $ca update -q; \
    apt-get $ca install -y -q --no-install-recommends postgresql-15; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log; \
    mkdir -p /var/lib/postgresql/data /run/postgresql; \
    chown -R postgres:postgres /var/lib/postgresql /run/postgresql; \
    chmod 700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY deploy/images/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
