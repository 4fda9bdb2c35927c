# AuraX Edge Proxy: a small image that runs `uvicorn app:app` (uvloop + httptools) on $PORT.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080 AURAX_CONFIG=/app/upstreams.toml

WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY app.py upstreams.toml ./
COPY relay ./relay
COPY routes ./routes
RUN pip install -c requirements.lock . && useradd --system --uid 10001 --no-create-home aurax

USER aurax
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=2)"]
CMD ["sh", "-c", "exec uvicorn app:app --host 0.0.0.0 --port \"$PORT\" --loop uvloop --http httptools --no-server-header"]
