# The service's image: `docker compose up` runs it with PostgreSQL, Redis and the worker.
# Two stages: compilers stay in the first; the second holds the virtual environment, the
# source, the shipped data and openapi.yaml (read from the checkout), and runs as a plain user.

FROM python:3.11-slim-bookworm AS build
# pytricia builds from source where no wheel fits.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
COPY pyproject.toml README.md ./
COPY verify ./verify
# Editable: settings find data/ and openapi.yaml beside the package, as in a checkout.
RUN pip install -e .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    VERIFY_HOST=0.0.0.0 VERIFY_PORT=8080 VERIFY_DATABASE_URL=sqlite:////app/var/verify.db
RUN groupadd --system --gid 10001 verify \
    && useradd --system --uid 10001 --gid verify --home-dir /app --shell /usr/sbin/nologin verify
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --from=build /app ./
COPY data ./data
COPY openapi.yaml ./
COPY deploy/entrypoint.sh /usr/local/bin/verify-entrypoint
RUN mkdir -p /app/var /var/lib/GeoIP && chown verify:verify /app/var /var/lib/GeoIP
USER 10001:10001
EXPOSE 8080
# Ready means the database takes a write (GET /readyz answers 503 otherwise).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('VERIFY_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["verify-entrypoint"]
CMD ["verify", "serve"]
