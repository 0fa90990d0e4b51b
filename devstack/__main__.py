"""`make dev`: the whole stack in the foreground until SIGINT/SIGTERM, then nothing left running.

Each run starts with fresh logs, so its ready line can only mean this run's worker registered; the
children die with this process even when it is SIGKILLed (devstack/processes.py).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path

from devstack.foreground import fresh_log_dir, print_ready, stop_on_signals
from devstack.stack import Stack

# Numbers `make dev` answers, each with its agent from voice_gateway/agents.yaml.
DEV_NUMBERS = {"+15550100": "demo", "+15550101": "support"}


def add_dev_numbers(stack: Stack, api_key: str) -> list[str]:
    """Through the API, as an operator would: a number that already exists is left as it is."""
    added = []
    for number, agent in DEV_NUMBERS.items():
        body = {"number": number, "agentId": agent, "allowedAddresses": ["127.0.0.1/32"]}
        request = urllib.request.Request(
            f"{stack.gateway_url}/v1/phone-numbers",
            data=json.dumps(body).encode(),
            headers={"x-api-key": api_key, "content-type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise
        added.append(f"{number} ({agent})")
    return added


def web_key_for(data_dir: Path, origin: str) -> str:
    """The page's publishable key: the one an earlier run made for this origin, or a new one.
    Kept in the dev directory beside the database that holds its hash."""
    path = data_dir / "web-key.json"
    try:
        saved = json.loads(path.read_text())
        if saved.get("origin") == origin and str(saved.get("key", "")).startswith("vgw_pk_"):
            return str(saved["key"])
    except (OSError, ValueError):
        pass
    key = f"vgw_pk_{secrets.token_urlsafe(32)}"
    path.write_text(json.dumps({"origin": origin, "key": key}))
    path.chmod(0o600)
    return key


def main() -> int:
    api_key = os.environ.get("VOICEGW_DEV_API_KEY") or f"vgw_sk_dev_{secrets.token_urlsafe(24)}"
    port = int(os.environ.get("VOICEGW_PORT", "8080"))
    data_dir = fresh_log_dir(Path(os.environ.get("VOICEGW_DEV_DIR", ".dev")))
    stack = Stack(
        api_key=api_key,
        gateway_port=port,
        log_dir=data_dir,
        database_url=os.environ.get("VOICEGW_DATABASE_URL"),
        web_key=web_key_for(data_dir, f"http://127.0.0.1:{port}"),
        sip_port=int(os.environ.get("VOICEGW_DEV_SIP_PORT", "0")) or None,
    )
    stop = stop_on_signals()
    try:
        stack.start()
        print(f"LiveKit {stack.livekit.url} | gateway {stack.gateway_url} | logs in {data_dir}/")
        if not os.environ.get("VOICEGW_DEV_API_KEY"):
            print(f"dev API key (owner, every scope): {api_key}")
        print(f"page: open {stack.gateway_url}/ in a browser and press Talk")
        if stack.sip is not None:
            numbers = add_dev_numbers(stack, api_key)
            print(f"phone: dial sip:<number>@{stack.sip.address} (udp or tcp) from 127.0.0.1;")
            print(f"       numbers: {', '.join(numbers)}")
            print(f"       e.g. baresip: /dial {stack.sip.uri('+15550100')}")
        print_ready(stack.gateway_url, api_key)
        stop.wait()
    finally:
        print("stopping...", file=sys.stderr, flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
