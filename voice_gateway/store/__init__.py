from voice_gateway.store.database import Database
from voice_gateway.store.models import ApiKeyRecord, SessionRecord, SessionStatus, TranscriptSegment

__all__ = ["ApiKeyRecord", "Database", "SessionRecord", "SessionStatus", "TranscriptSegment"]
