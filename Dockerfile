# pds in a container: the vault lives in the /data volume, the server runs as a non-root user.
# Give the passphrase as a secret file: -e PDS_PASSPHRASE_FILE=/run/secrets/pds_passphrase
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PDS_HOME=/data

RUN groupadd --system --gid 10001 pds \
    && useradd --system --uid 10001 --gid pds --home-dir /data --shell /usr/sbin/nologin pds \
    && mkdir -p /data \
    && chown pds:pds /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY pds ./pds
COPY connectors ./connectors
COPY static ./static
COPY policies ./policies
RUN pip install --no-cache-dir .

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["pds"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
