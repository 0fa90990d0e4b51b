"""`voicegw chat AGENT`: type to an agent in the terminal; its reply prints as it streams.

A chat session (POST /v1/chat/sessions) for as long as the conversation: each line you type is a
message, its answer comes as server-sent events, and Ctrl-D (or /quit) ends the session.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from voice_gateway.cli.client import ApiClient, CliError

PROMPT = "you> "
AGENT = "agent> "
QUIT = {"/quit", "/exit"}


def _chat(client: ApiClient, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"agentId": args.agent}
    if args.user:
        body["userIdentity"] = args.user
    session = client.post("/v1/chat/sessions", body)
    path = f"/v1/chat/sessions/{session['sessionId']}"
    greeting = session.get("greeting")
    if greeting:
        print(AGENT + greeting["text"], flush=True)
    try:
        while True:
            try:
                line = input(PROMPT if sys.stdin.isatty() else "")
            except EOFError:
                break
            text = line.strip()
            if text in QUIT:
                break
            if text:
                _ask(client, f"{path}/messages", text)
    except KeyboardInterrupt:
        print()
    finally:
        client.post(f"{path}/end")
    return 0


def _ask(client: ApiClient, path: str, text: str) -> None:
    print(AGENT, end="", flush=True)
    for event, data in client.stream(path, {"text": text}):
        payload = json.loads(data)
        if event == "message.delta":
            print(payload["delta"], end="", flush=True)
        elif event == "message.completed":
            print(flush=True)
        elif event == "error":
            print(flush=True)
            error = payload["error"]
            raise CliError(f"{error['code']}: {error['message']}")


def register(groups: Any) -> None:
    parser: argparse.ArgumentParser = groups.add_parser(
        "chat", help="type to an agent in the terminal (a chat session)"
    )
    parser.add_argument("agent", help="the agent id, e.g. demo")
    parser.add_argument("--user", help="your user identity (default: generated)")
    parser.set_defaults(run=_chat)
