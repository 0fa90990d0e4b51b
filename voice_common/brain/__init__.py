"""One brain, two media: what an agent answers, whether the question was spoken or typed.

The worker's LLM engines (agent_worker/engines/brain_llm.py, a livekit-agents adapter) and the
gateway's text channels (chat sessions, OpenAI-compatible completions) both call this package, so
the prompt (the agent's instructions, its FAQ and the conversation so far), the offline responder
and the OpenAI-compatible client are one implementation, not two that could drift. Free of
livekit imports, so the gateway runs it without the voice stack.
"""

from voice_common.brain.brain import Brain, engine_for
from voice_common.brain.errors import BrainConfigError, BrainError
from voice_common.brain.reply import Reply
from voice_common.brain.turns import Piece, ToolCall, Turn, Usage

__all__ = [
    "Brain",
    "BrainConfigError",
    "BrainError",
    "Piece",
    "Reply",
    "ToolCall",
    "Turn",
    "Usage",
    "engine_for",
]
