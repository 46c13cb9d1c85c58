# pds in a container: the vault lives in the /data volume, the server runs as uid 10001.
# deploy/entrypoint.sh creates the vault on first start (passphrase from the secret file in
# PDS_PASSPHRASE_FILE) and upgrades an older one (backup first) before serving; PDS_ISSUER
# must say where clients reach it. compose.yaml runs it behind Caddy; docs/deploy.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PDS_HOME=/data

RUN groupadd --system --gid 10001 pds \
    && useradd --system --uid 10001 --gid pds --home-dir /data --shell /usr/sbin/nologin pds \
    && mkdir -p /data \
    && chown pds:pds /data \
    && chmod 0700 /data

WORKDIR /app
# The runtime dependencies exactly as locked, each checked against its hashes.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY pds ./pds
COPY connectors ./connectors
COPY static ./static
COPY policies ./policies
RUN pip install --no-cache-dir --no-deps .
COPY deploy/entrypoint.sh /usr/local/bin/pds-entrypoint

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["pds-entrypoint"]
CMD ["pds", "serve", "--host", "0.0.0.0", "--port", "8000"]
