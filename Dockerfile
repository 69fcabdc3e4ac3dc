# The failover daemon. Built by docker-compose.yml (which also runs `failover lab` from it).
#   docker build -t failover .
#   docker run -v $PWD/config.yaml:/etc/failover/config.yaml:ro -p 127.0.0.1:9470:9470 failover
# Other commands: docker run --entrypoint failover failover check -c /etc/failover/config.yaml
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid/gid, so volume ownership and Kubernetes' runAsUser can name it.
RUN groupadd --system --gid 10001 failover \
    && useradd --system --uid 10001 --gid failover --no-create-home \
        --home-dir /var/lib/failover --shell /usr/sbin/nologin failover \
    && install -d -o failover -g failover -m 0750 /var/lib/failover \
    && install -d -m 0755 /etc/failover

# Only what `pip install .` needs (.dockerignore keeps the rest out of the context);
# README.md is the package's long description in pyproject.toml.
WORKDIR /build
COPY pyproject.toml README.md ./
COPY failover ./failover
RUN pip install . && rm -rf /build

USER 10001:10001
# The state_dir of deploy/failover/config.yaml. A new named volume mounted here takes this
# directory's owner, so the daemon can write its state (no VOLUME: the lab needs none).
WORKDIR /var/lib/failover
EXPOSE 9470
# SIGTERM (docker stop's default) stops the daemon and leaves the data plane as it is.
STOPSIGNAL SIGTERM
ENTRYPOINT ["failover", "run", "-c", "/etc/failover/config.yaml"]
