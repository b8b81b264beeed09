# SatShare as a container image (docs/deploy.md). One image for every role: `serve` (the API,
# checkout pages and bot), `worker` (background jobs), `migrate`, `backup`.
# Build: docker build -t satshare .

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# Installed into a prefix that the runtime stage copies whole: no compiler, no pip cache.
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
# pg_dump/pg_restore for `satshare backup` and `satshare restore` on PostgreSQL. Debian's
# client is PostgreSQL 15 on bookworm: pg_dump refuses newer servers, so compose.yaml runs
# postgres:15 (for a newer server, install its client from apt.postgresql.org here).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/satshare satshare
COPY --from=build /install /usr/local
USER satshare
WORKDIR /var/lib/satshare
ENV PYTHONUNBUFFERED=1 \
    SATSHARE_SERVER__HOST=0.0.0.0 \
    SATSHARE_SERVER__PORT=8000
EXPOSE 8000
# Liveness only (/health does not touch the database): a database outage must not get every
# API container restarted. Load balancers use /ready. Python, because the slim image has no
# curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('SATSHARE_SERVER__PORT', '8000'), timeout=4)"]
ENTRYPOINT ["satshare"]
CMD ["serve"]
