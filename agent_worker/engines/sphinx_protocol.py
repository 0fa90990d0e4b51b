"""The pipe protocol between the worker and its PocketSphinx child process.

Worker to child: a fixed header (operation, stream id, payload length) and the payload. Child to
worker: one JSON object per line. Every message names its stream, so one child can serve many
recognition streams at once (several sessions of a thread-executor worker today, a per-process
decoder pool later) and a reply can never be taken for another stream's.

Imports only the standard library: the child imports it too.
"""

from __future__ import annotations

import enum
import struct

HEADER = struct.Struct("<BII")
SAMPLE_RATE = 16000
"""The shipped acoustic model is trained on 16 kHz audio; everything sent is 16 kHz mono int16."""


class Op(enum.IntEnum):
    LOAD_LM = 1
    """stream 0; JSON {"key", "phrases"}: build (or reuse) an agent model. Reply: "lm"."""
    OPEN = 2
    """JSON {"lm": key or null, "gate": bool}: a recognition stream; gate=false treats all audio
    as speech (a whole utterance handed over at once)."""
    AUDIO = 3
    """raw 16 kHz mono int16 PCM."""
    FLUSH = 4
    """the caller's turn ended: finish the utterance. Reply: exactly one "final"."""
    CLOSE = 5
    """forget the stream."""


def pack(op: Op, stream: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(op, stream, len(payload)) + payload
