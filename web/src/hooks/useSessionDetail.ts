import { useEffect, useState } from 'react';
import { ApiError, describeError, type ApiConfig } from '../lib/api-client';
import { opsApi, type Session, type TranscriptSegment } from '../lib/ops';
import { usePoll } from './usePoll';

export type SessionDetail =
  | { status: 'loading' }
  | { status: 'ready'; session: Session; transcript: TranscriptSegment[] }
  | { status: 'no_session' }
  | { status: 'error'; code: string; message: string };

/** One session with its transcript, read every `everyMs` while it is open (a live call keeps
 * talking). A room without a session (an orphan) has nothing to read. */
export function useSessionDetail(
  api: ApiConfig,
  room: string,
  hasSession: boolean,
  everyMs: number,
): SessionDetail {
  const [detail, setDetail] = useState<SessionDetail>({ status: 'loading' });
  useEffect(() => {
    setDetail(hasSession ? { status: 'loading' } : { status: 'no_session' });
  }, [room, hasSession]);
  usePoll(hasSession ? room : null, everyMs, async (current) => {
    try {
      const [session, transcript] = await Promise.all([
        opsApi.session(api, room),
        opsApi.transcript(api, room),
      ]);
      if (current()) setDetail({ status: 'ready', session, transcript: transcript.segments });
    } catch (error) {
      if (!current()) return;
      const gone = error instanceof ApiError && error.code === 'session_not_found';
      setDetail(gone ? { status: 'no_session' } : { status: 'error', ...describeError(error) });
    }
  });
  return detail;
}
