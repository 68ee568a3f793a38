# The otelperf demo service for the docker compose stack (docker-compose.yml builds this).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package build needs, so editing tests or docs does not rebuild the image.
COPY pyproject.toml README.md ./
COPY otelperf ./otelperf
RUN pip install . && useradd --system --no-create-home otelperf

USER otelperf
EXPOSE 9464
# 0.0.0.0 inside the container so Prometheus (another container) can scrape it; the compose
# file publishes the port on the host's 127.0.0.1 only.
CMD ["otelperf", "demo", "--host", "0.0.0.0", "--port", "9464"]
