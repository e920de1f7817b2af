# clusterbus: one image for the engine, the handlers and the simulator (the command picks the role).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Metadata first so the dependency layer is reused while only the code changes.
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY handlers ./handlers
COPY statemachines ./statemachines
COPY simulator ./simulator
RUN pip install ".[postgres]" && rm -rf /src

# A fixed non-root uid, so mounted volumes and Kubernetes securityContext can name it.
RUN groupadd --system --gid 10001 clusterbus \
    && useradd --system --uid 10001 --gid clusterbus --home-dir /var/lib/clusterbus \
       --create-home --shell /usr/sbin/nologin clusterbus \
    && install -d -o clusterbus -g clusterbus -m 0700 /var/lib/clusterbus/keys \
    && install -d -o clusterbus -g clusterbus /var/lib/clusterbus/sim

USER clusterbus
WORKDIR /var/lib/clusterbus
# Relative defaults (store, key file) land in the home directory, never in the image's /.
ENV CLUSTERBUS_SECRET_KEY_FILE=/var/lib/clusterbus/keys/clusterbus.key

ENTRYPOINT ["clusterbus"]
CMD ["--help"]
