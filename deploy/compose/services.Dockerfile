# Redis (the store) and Prometheus for deploy/compose, from Debian's packages (unless the base image
# has them already): built like the esm image from BASE_IMAGE, so the compose file needs no image
# registry. Where you have one, use your usual Redis and Prometheus images instead.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS redis
RUN if ! command -v redis-server >/dev/null; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
      && rm -rf /var/lib/apt/lists/*; \
    fi
USER redis
ENTRYPOINT ["redis-server"]

FROM ${BASE_IMAGE} AS prometheus
RUN if ! command -v prometheus >/dev/null; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
      && rm -rf /var/lib/apt/lists/*; \
    fi
USER prometheus
WORKDIR /var/lib/prometheus
ENTRYPOINT ["prometheus"]
