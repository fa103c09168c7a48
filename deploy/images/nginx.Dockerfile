# nginx from Debian's packages on the local base (bookworm: nginx 1.22), laid out like the
# upstream image: /etc/nginx/conf.d/*.conf, logs to stdout/stderr, foreground.
ARG BASE_IMAGE=correli-base:bookworm
FROM ${BASE_IMAGE}
RUN --mount=type=secret,id=ca \
    set -eu; \
    ca=""; [ -s /run/secrets/ca ] && ca="-o Acquire::https::CAInfo=/run/secrets/ca"; \
    apt-get $ca update -q; \
    apt-get $ca install -y -q --no-install-recommends nginx-light; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log; \
    rm -f /etc/nginx/sites-enabled/default; \
    ln -sf /dev/stdout /var/log/nginx/access.log; \
    ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
