"""nginx as the floor (Debian/Ubuntu: `apt-get install -y nginx-light`): a reverse proxy to the
fake upstream with one process, keep-alive to the upstream and no response buffering (streams
go through as they arrive).

`master_process off` keeps it to a single process, so its CPU time and memory are one PID's,
like the proxy's; a lone worker under a master does the same work.
"""

from __future__ import annotations

import shutil
from pathlib import Path

NGINX = shutil.which("nginx") or (shutil.which("/usr/sbin/nginx") if Path("/usr/sbin/nginx").exists() else None)

_CONF = """
worker_processes 1;
master_process off;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {work}/nginx-access.log;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy_temp;
    fastcgi_temp_path {work}/fastcgi_temp;
    uwsgi_temp_path {work}/uwsgi_temp;
    scgi_temp_path {work}/scgi_temp;
    client_max_body_size 30m;
    client_body_buffer_size 1m;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream fake {{
        server 127.0.0.1:{upstream_port};
        keepalive 256;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 300s;
        }}
    }}
}}
"""


def config(work: Path, port: int, upstream_port: int) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    path = work / "nginx.conf"
    path.write_text(_CONF.format(work=work, port=port, upstream_port=upstream_port))
    return path


def argv(work: Path, conf: Path) -> list[str]:
    return [NGINX, "-p", str(work), "-c", str(conf), "-e", str(work / "nginx-error.log")]
