# AuraX Edge Proxy: uvicorn (uvloop + httptools) serving app:app on $PORT, as a non-root user.
#   docker build -t aurax .
#   docker run --rm -p 8080:8080 --stop-timeout 35 -e OPENAI_API_KEY=... aurax
# Secrets come only from the environment; mount another config with
#   -v $PWD/my.toml:/config/upstreams.toml -e AURAX_CONFIG=/config/upstreams.toml
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080 \
    AURAX_CONFIG=/app/upstreams.toml

WORKDIR /app
# Dependencies first, pinned by the lock, so a code change does not reinstall them.
COPY pyproject.toml requirements.lock README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" > /tmp/deps.txt \
    && pip install -c requirements.lock -r /tmp/deps.txt && rm /tmp/deps.txt
COPY app.py upstreams.toml ./
COPY relay ./relay
COPY routes ./routes
# Compiled now: PYTHONDONTWRITEBYTECODE (and a read-only /app) would make every start compile
# the app from source, ~0.1 s of a cold start.
RUN python -m compileall -q app.py relay routes
RUN useradd --system --uid 10001 --no-create-home aurax

USER aurax
EXPOSE 8080
# SIGTERM drains: open streams finish (up to [proxy] drain_s), then exit 0. Give `docker stop`
# (--stop-timeout) or the orchestrator a longer grace period than drain_s.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=2)"]
# --no-proxy-headers: the client address is the proxy's own business ([proxy] trust_cloudflare,
# trusted_proxies), not uvicorn's. The access log is on: the app writes uvicorn's lines itself, in
# batches and with ?key= redacted (--no-access-log turns it off).
# Against idle and half-open connections (README, "What one replica holds"): uvicorn's httptools
# protocol with a deadline for request heads and a cap on their size (relay/protocol.py;
# `--http httptools` is uvicorn's own); keep-alive longer than a load balancer's 60 s idle so the
# balancer closes first; at most 2048 connections and requests at once (above that uvicorn
# answers 503 at once: ~50 KB an open stream, 2048 of them ~100 MB); a 2048-connection backlog.
CMD ["sh", "-c", "exec uvicorn app:app --host 0.0.0.0 --port \"$PORT\" --loop uvloop --http relay.protocol:HttpToolsWithDeadlines --no-proxy-headers --no-server-header --timeout-keep-alive 75 --limit-concurrency 2048 --backlog 2048"]
