# syntax=docker/dockerfile:1
# stomp-gateway: STOMP 1.2 over WebSocket chat gateway.
# Build: docker build -t stomp-gateway .   Run: docker run -p 8080:8080 stomp-gateway

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY protocol ./protocol
COPY gateway ./gateway
COPY kafka_bridge ./kafka_bridge
COPY persistence ./persistence
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="stomp-gateway" \
      org.opencontainers.image.description="STOMP 1.2 over WebSocket chat gateway with Kafka fan-out and MongoDB history"
RUN useradd --system --uid 10001 --no-create-home gateway
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels stomp-gateway && rm -rf /wheels
ENV STOMP_GATEWAY_HOST=0.0.0.0 \
    STOMP_GATEWAY_PORT=8080 \
    PYTHONUNBUFFERED=1
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["stomp-gateway"]
