# syntax=docker/dockerfile:1
# stomp-gateway: STOMP 1.2 over WebSocket chat gateway.
# Build: docker build -t stomp-gateway .   Run: docker run -p 8080:8080 stomp-gateway
# Configure with STOMP_GATEWAY_* variables (see docs/configuration.md).

# Stage 1: build the wheel and install it with its dependencies into a virtualenv.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY protocol ./protocol
COPY gateway ./gateway
COPY kafka_bridge ./kafka_bridge
COPY persistence ./persistence
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/stomp-gateway \
    && /opt/stomp-gateway/bin/pip install /wheels/stomp_gateway-*.whl

# Stage 2: the runtime: the virtualenv only (no sources, tests, benchmarks or build tools).
FROM python:3.11-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="stomp-gateway" \
      org.opencontainers.image.description="STOMP 1.2 over WebSocket chat gateway with Kafka fan-out and MongoDB history" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway
COPY --from=build /opt/stomp-gateway /opt/stomp-gateway
ENV PATH=/opt/stomp-gateway/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STOMP_GATEWAY_HOST=0.0.0.0 \
    STOMP_GATEWAY_PORT=8080
USER 10001
EXPOSE 8080
# The health check asks the port the gateway listens on: STOMP_GATEWAY_PORT as
# the container runs with it (podman run -e / compose environment), 8080 unset.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('STOMP_GATEWAY_PORT', '8080'), timeout=2)"]
# Docker's stop signal: the gateway drains (see --drain-period), then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["stomp-gateway"]
