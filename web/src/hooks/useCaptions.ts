import { useTranscriptions } from '@livekit/components-react';
import { useRoomContext } from '@livekit/components-react';

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

/** Both speakers' captions from the room's `lk.transcription` text streams, in order. LiveKit's
 * useTranscriptions keeps one entry per segment, so a later stream of the same segment (the final
 * text after interim ones) replaces the earlier text instead of adding a line. */
export function useCaptions(): Caption[] {
  const room = useRoomContext();
  const localIdentity = room.localParticipant.identity;
  return useTranscriptions()
    .filter((stream) => stream.text.trim() !== '')
    .map((stream) => ({
      id: stream.streamInfo.attributes?.['lk.segment_id'] ?? stream.streamInfo.id,
      speaker: stream.participantInfo.identity === localIdentity ? 'you' : 'agent',
      text: stream.text.trim(),
      final: stream.streamInfo.attributes?.['lk.transcription_final'] === 'true',
      at: stream.streamInfo.timestamp,
    }));
}
