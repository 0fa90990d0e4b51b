"""`python -m bench.sip_calls`: what LiveKit's SIP service costs per phone call.

A real stack (Redis, livekit-server, livekit-sip, gateway, one worker) and real SIP phones
(baresip) calling a number made through the API: idle, then 1, 2 and 4 calls at once, each held
for a steady window while the agent greets and the phones send audio. For each step it prints the
CPU (percent of one core) and the memory (PSS) of the SIP service, and beside them, measured in
the same windows, livekit-server's and the agent worker's, so the SIP share of a call is a ratio
of one run. Bounded: four windows of WINDOW_S seconds, a few minutes in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sys
import time
import urllib.request
from dataclasses import dataclass

from bench.procs import CpuWindow, tree_memory
from devstack.sip_phone import Baresip
from devstack.stack import Stack

STEPS = (0, 1, 2, 4)
WINDOW_S = 12.0
SETTLE_S = 6.0  # after the last call of a step is up: the greeting is playing


@dataclass
class Row:
    calls: int
    cpu: dict[str, float]
    sip_pss_mb: float
    worker_pss_mb: float


def _add_number(stack: Stack, number: str) -> None:
    body = {"number": number, "agentId": "support", "allowedAddresses": ["127.0.0.1/32"]}
    request = urllib.request.Request(
        f"{stack.gateway_url}/v1/phone-numbers",
        data=json.dumps(body).encode(),
        headers={"x-api-key": stack.api_key, "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 201


async def _measure(stack: Stack, number: str) -> list[Row]:
    assert stack.sip is not None and stack.sip.pid is not None and stack.gateway is not None
    assert stack.livekit.pid is not None
    pids = {
        "sip": stack.sip.pid,
        "livekit": stack.livekit.pid,
        "worker": stack.workers[0].proc.pid,
        "gateway": stack.gateway.proc.pid,
    }
    phones: list[Baresip] = []
    rows = []
    try:
        for calls in STEPS:
            while len(phones) < calls:
                p = Baresip(number=f"+1666{secrets.randbelow(10**7):07d}")
                await p.start()
                phones.append(p)
                await p.dial(stack.sip.uri(number))
                await p.wait_for("CALL_ESTABLISHED", 90)
            await asyncio.sleep(SETTLE_S if calls else 2)
            window = CpuWindow(pids, solo=frozenset({"gateway"}))
            window.start()
            await asyncio.sleep(WINDOW_S)
            cpu = window.stop()
            rows.append(
                Row(
                    calls=calls,
                    cpu=cpu,
                    sip_pss_mb=tree_memory(pids["sip"]).pss_mb,
                    worker_pss_mb=tree_memory(pids["worker"]).pss_mb,
                )
            )
            print(f"  {calls} call(s): sip {cpu['sip']:.1f}% cpu", file=sys.stderr, flush=True)
    finally:
        for p in phones:
            with contextlib.suppress(Exception):
                await p.hangup()
            await p.stop()
    return rows


def render(rows: list[Row]) -> str:
    idle = rows[0]
    lines = [
        "| calls | SIP CPU % | SIP CPU per call | SIP PSS MB | SIP MB per call "
        "| livekit CPU % | worker CPU % | worker CPU per call | others % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n = r.calls
        per_cpu = f"{(r.cpu['sip'] - idle.cpu['sip']) / n:.1f}" if n else "-"
        per_mb = f"{(r.sip_pss_mb - idle.sip_pss_mb) / n:.1f}" if n else "-"
        per_worker = f"{(r.cpu['worker'] - idle.cpu['worker']) / n:.1f}" if n else "-"
        lines.append(
            f"| {n} | {r.cpu['sip']:.1f} | {per_cpu} | {r.sip_pss_mb:.0f} | {per_mb} "
            f"| {r.cpu['livekit']:.1f} | {r.cpu['worker']:.1f} | {per_worker} "
            f"| {r.cpu['others']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    stack = Stack(api_key=f"vgw_sk_{secrets.token_urlsafe(32)}")
    number = "+15559990000"
    started = time.monotonic()
    try:
        stack.start()
        _add_number(stack, number)
        rows = asyncio.run(_measure(stack, number))
    finally:
        stack.stop()
    print(render(rows))
    print(f"\n({time.monotonic() - started:.0f} s; CPU in percent of one core, 2 cores in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
