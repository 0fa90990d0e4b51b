import { useEffect, useReducer } from 'react';
import { useRoomContext, useTranscriptions } from '@livekit/components-react';

export interface Caption {
  id: string;
  speaker: 'you' | 'agent';
  text: string;
  /** Interim lines (the user's words while still speaking) are replaced by the final one. */
  final: boolean;
  /** Typed in the call's text box rather than spoken. */
  typed?: boolean;
  /** When the line started (ms since the epoch), to place typed lines among spoken ones. */
  at: number;
}

// How often a line still marked interim is looked at again (see below).
const RECHECK_MS = 250;

/** Both speakers' captions from the room's `lk.transcription` text streams, in order. LiveKit's
 * useTranscriptions keeps one entry per segment, so a later stream of the same segment (the final
 * text after interim ones) replaces the earlier text instead of adding a line.
 *
 * The agent's line is one stream whose `lk.transcription_final` turns "true" in the stream's
 * trailer, after its last chunk. livekit-client writes the trailer's attributes into the stream's
 * info in place, but useTranscriptions only re-renders on chunks, so while a line is still
 * interim the captions are read again every RECHECK_MS; without it, a line would stay interim
 * until something else re-rendered the page. */
export function useCaptions(): Caption[] {
  const room = useRoomContext();
  const localIdentity = room.localParticipant.identity;
  const captions: Caption[] = useTranscriptions()
    .filter((stream) => stream.text.trim() !== '')
    .map((stream) => ({
      id: stream.streamInfo.attributes?.['lk.segment_id'] ?? stream.streamInfo.id,
      speaker: stream.participantInfo.identity === localIdentity ? 'you' : 'agent',
      text: stream.text.trim(),
      final: stream.streamInfo.attributes?.['lk.transcription_final'] === 'true',
      at: stream.streamInfo.timestamp,
    }));
  const waiting = captions.some((c) => !c.final);
  const [, recheck] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    if (!waiting) return;
    const timer = window.setInterval(recheck, RECHECK_MS);
    return () => window.clearInterval(timer);
  }, [waiting]);
  return captions;
}
