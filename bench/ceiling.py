"""The ceiling: a bare aiohttp handler that parses the /start JSON and answers a like-sized body.

Run in its own process on loopback (`python -m bench.ceiling PORT`), as the gateway is, so the two
pay the same HTTP, JSON and process-scheduling costs and differ only in the gateway's own work.
"""

from __future__ import annotations

import json
import secrets
import sys

from aiohttp import web

_TOKEN = secrets.token_urlsafe(300)  # about the size of the user token /start returns


async def start(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    if not isinstance(body, dict) or "agentId" not in body:
        return web.json_response({"error": {"code": "invalid_request"}}, status=400)
    return web.json_response(
        {
            "sessionId": f"ses_{secrets.token_hex(12)}",
            "roomName": f"vgw-{body['agentId']}-{secrets.token_hex(6)}",
            "userToken": _TOKEN,
            "livekitUrl": "ws://127.0.0.1:7880",
            "agentId": body["agentId"],
            "userIdentity": body.get("userIdentity") or "user",
            "expiresAt": "2030-01-01T00:00:00Z",
        },
        status=201,
    )


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/sessions/start", start)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
