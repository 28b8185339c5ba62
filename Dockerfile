# Dockerfile: mika in a container.
#
#   podman build -t mika .        (or docker build; BASE defaults to bookworm-slim)
#   podman run -p 34000:34000 -v mika-data:/var/lib/mika mika
#
# Two stages: the first builds the Debian package (debian/, the same one
# `make deb` makes), the second installs it on a clean base, so the runtime
# libraries come from the package's own dependencies and the image has the
# package's system user, /etc/mika/mika.ini and /var/lib/mika.
# Configuration: any key as MIKA_<SECTION>_<KEY> (docs/CONFIG.md), e.g.
#   -e MIKA_TRACKER_INTERVAL=900 -e MIKA_STORE_BACKEND=postgres -e MIKA_STORE_DSN=...
# `make test-docker` builds it with BASE set to a debootstrapped bookworm.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential debhelper cmake pkg-config libsqlite3-dev libinih-dev \
        libmicrohttpd-dev libjansson-dev libgnutls28-dev libcurl4-gnutls-dev libpq-dev \
        libmariadb-dev libhiredis-dev libsystemd-dev libmaxminddb-dev \
    && rm -rf /var/lib/apt/lists/*
COPY . /src/mika
WORKDIR /src/mika
RUN DEB_BUILD_OPTIONS="noddebs parallel=$(nproc)" dpkg-buildpackage -b -us -uc >/src/build.log 2>&1 \
    || { tail -n 40 /src/build.log; exit 1; }

FROM ${BASE}
COPY --from=build /src/mika_*.deb /tmp/
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /tmp/mika_*.deb \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/mika_*.deb \
    && rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/*

# The store, the journal and the admin API's certificate and keys: the
# defaults store.path = ./mika.db and api.data_dir = . put them in the
# working directory, the volume (variables here would override a mounted
# mika.ini). The API listens on every address of the container.
ENV MIKA_API_BIND=0.0.0.0
VOLUME /var/lib/mika
WORKDIR /var/lib/mika
# The HTTP tracker and the admin API (HTTPS; every route but /health needs a key).
EXPOSE 34000/tcp 34001/tcp
USER mika:mika
# GET /health on the admin API: `mika client` reads the same MIKA_* variables
# and working directory (port, data_dir for the certificate), so it follows
# any override.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/bin/mika", "client", "--timeout", "4", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/mika", "serve"]
CMD ["--config", "/etc/mika/mika.ini"]
