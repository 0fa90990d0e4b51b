"""`make dev`: the whole stack in the foreground until SIGINT/SIGTERM, then nothing left running."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from devstack.stack import Stack


def main() -> int:
    api_key = os.environ.get("VOICEGW_DEV_API_KEY") or f"vgw_sk_dev_{secrets.token_urlsafe(24)}"
    port = int(os.environ.get("VOICEGW_PORT", "8080"))
    data_dir = Path(os.environ.get("VOICEGW_DEV_DIR", ".dev"))
    data_dir.mkdir(exist_ok=True)
    stack = Stack(
        api_key=api_key,
        gateway_port=port,
        log_dir=data_dir,
        database_url=os.environ.get("VOICEGW_DATABASE_URL"),
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stack.start()
        print(f"LiveKit {stack.livekit.url} | gateway {stack.gateway_url} | logs in {data_dir}/")
        if not os.environ.get("VOICEGW_DEV_API_KEY"):
            print(f"dev API key (owner, every scope): {api_key}")
        print(
            f"ready: curl -s -X POST {stack.gateway_url}/v1/sessions/start "
            f"-H 'x-api-key: {api_key}' -H 'content-type: application/json' "
            """-d '{"agentId": "demo"}'""",
            flush=True,
        )
        stop.wait()
    finally:
        print("stopping...", file=sys.stderr, flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
