import { useEffect } from 'react';
import {
  StartAudio,
  useConnectionState,
  useLocalParticipant,
  useVoiceAssistant,
  type AgentState,
} from '@livekit/components-react';
import { ConnectionState } from 'livekit-client';
import { BackgroundAudioRenderer } from './BackgroundAudioRenderer';
import { Captions } from './Captions';
import { ChatBox } from './ChatBox';
import { VoiceAudioRenderer } from './VoiceAudioRenderer';
import { useTypedMessages } from '../hooks/useTypedMessages';

interface Props {
  roomName: string;
  muted: boolean;
  onAgentState: (state: AgentState | null) => void;
}

/** What a call shows and plays, inside <LiveKitRoom>: the captions, and below them a text box
 * whose messages the agent answers like speech (livekit-agents' `lk.chat` text input). */
export function SessionView({ roomName, muted, onAgentState }: Props) {
  const { typed, send } = useTypedMessages();
  return (
    <section className="session" aria-label="Call" data-room={roomName}>
      <VoiceAudioRenderer />
      <BackgroundAudioRenderer />
      <StartAudio label="Allow audio" className="start-audio" />
      <MicrophoneSync muted={muted} />
      <AgentStateProbe onChange={onAgentState} />
      <Captions typed={typed} />
      <ChatBox onSend={send} />
      <p className="call-id">
        Call <code>{roomName}</code>
      </p>
    </section>
  );
}

/** Applies Mute while connected (LiveKitRoom's `audio` sets it when the room connects). */
function MicrophoneSync({ muted }: { muted: boolean }) {
  const { localParticipant } = useLocalParticipant();
  const state = useConnectionState();
  useEffect(() => {
    if (state === ConnectionState.Connected) void localParticipant.setMicrophoneEnabled(!muted);
    // Only a change of `muted` acts: the room's own connect already applied the first value.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [muted]);
  return null;
}

/** The agent's state (its `lk.agent.state` attribute, read by useVoiceAssistant), passed up to
 * the status line that lives outside the room. */
function AgentStateProbe({ onChange }: { onChange: (state: AgentState | null) => void }) {
  const { state } = useVoiceAssistant();
  useEffect(() => {
    onChange(state);
  }, [state, onChange]);
  return null;
}
