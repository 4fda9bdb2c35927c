"""SIGTERM: stop taking requests, let open streams finish (at most `drain_s`), exit 0.

uvicorn already stops accepting and waits for open connections on SIGTERM, but it waits without
a bound and then re-raises the signal, so the process dies of it (exit 143). When the app runs
under uvicorn's `Server`, this handler asks that server to exit the same graceful way without
re-raising, and bounds the wait: streams still open after `drain_s` end with an error event.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from .runtime import Runtime

log = logging.getLogger("uvicorn.error")


def drain_on_sigterm(rt: Runtime) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signals belong to the main thread; an embedding host handles them itself
    previous = signal.getsignal(signal.SIGTERM)
    server = getattr(previous, "__self__", None)
    loop = asyncio.get_running_loop()

    def on_sigterm(signum, frame) -> None:
        loop.call_soon_threadsafe(rt.begin_drain)
        if server is not None and hasattr(server, "should_exit"):
            log.info("SIGTERM: draining open requests for up to %gs", rt.config.proxy.drain_s)
            server.should_exit = True
        elif callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
