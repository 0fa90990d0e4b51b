import { useCallback, useState } from 'react';
import { useRoomContext } from '@livekit/components-react';
import type { Caption } from './useCaptions';

/** livekit-agents' text input: the agent answers what arrives on this text stream topic as it
 * answers speech (in voice and captions), and stores the turn as typed. */
export const CHAT_TOPIC = 'lk.chat';
/** The longest message the agent takes (voice_common/brain/turns.py MAX_MESSAGE_CHARS). */
export const MAX_MESSAGE_CHARS = 4000;

export interface TypedMessages {
  /** What this person typed in the call, as caption lines of their own. */
  typed: Caption[];
  send: (text: string) => Promise<void>;
}

/** Typed turns of a call, inside <LiveKitRoom>. The room does not echo a participant's own text
 * stream back, so each sent message joins the captions from here. */
export function useTypedMessages(): TypedMessages {
  const room = useRoomContext();
  const [typed, setTyped] = useState<Caption[]>([]);
  const send = useCallback(
    async (text: string) => {
      const info = await room.localParticipant.sendText(text, { topic: CHAT_TOPIC });
      const line: Caption = {
        id: info.id,
        speaker: 'you',
        text,
        final: true,
        typed: true,
        at: info.timestamp,
      };
      setTyped((lines) => [...lines, line]);
    },
    [room],
  );
  return { typed, send };
}
