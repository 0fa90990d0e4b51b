import { useMemo, useState } from 'react';
import { LiveKitRoom, type AgentState } from '@livekit/components-react';
import type { RoomOptions } from 'livekit-client';
import { AgentPicker } from '../components/AgentPicker';
import { Controls } from '../components/Controls';
import { SessionView } from '../components/SessionView';
import { StatusLine } from '../components/StatusLine';
import { useAgents } from '../hooks/useAgents';
import { useVoiceSession } from '../hooks/useVoiceSession';
import type { WebConfigState } from '../hooks/useWebConfig';
import { viaSessionsApi, viaTokenEndpoint, type ConnectVia } from '../lib/connect';

// Muting releases the microphone (its light goes off), as people expect of a Mute button.
// The browser's noise suppression is off: measured in the browser test, it put words into what
// the recognizer heard ("what are your opening not hours", every try, on an idle machine; without
// it "are your opening hours"). Echo cancellation and gain control stay on: a person on speakers
// must not be heard by the agent as its own voice.
const ROOM_OPTIONS: RoomOptions = {
  publishDefaults: { stopMicTrackOnMute: true },
  audioCaptureDefaults: { noiseSuppression: false },
};

/** `?via=token-endpoint` starts calls through LiveKit's standard token endpoint instead of our
 * sessions API: the same session either way, the way LiveKit's starter apps ask for it. */
function connectVia(): ConnectVia {
  return new URLSearchParams(window.location.search).get('via') === 'token-endpoint'
    ? 'token-endpoint'
    : 'sessions';
}

export function TalkPage({ setup }: { setup: WebConfigState }) {
  const api = setup.status === 'ready' ? setup.api : null;
  const agents = useAgents(api);
  const connector = useMemo(() => {
    if (setup.status !== 'ready') return null;
    return connectVia() === 'token-endpoint'
      ? viaTokenEndpoint(setup.api, setup.config.tokenEndpoint)
      : viaSessionsApi(setup.api);
  }, [setup]);
  const session = useVoiceSession(api, connector);
  const [chosen, setChosen] = useState<string | null>(null);
  const [agentState, setAgentState] = useState<AgentState | null>(null);

  const agentList = agents.status === 'ready' ? agents.agents : [];
  const preferred = setup.status === 'ready' ? setup.config.defaultAgentId : null;
  const agentId =
    chosen ?? agentList.find((a) => a.id === preferred)?.id ?? agentList[0]?.id ?? '';
  const setupProblem =
    setup.status === 'error' ? setup : agents.status === 'error' ? agents : null;
  const { phase, connection } = session;

  return (
    <main className="talk">
      <h1>Talk to an agent</h1>
      <AgentPicker
        agents={agentList}
        value={agentId}
        disabled={phase === 'connecting' || phase === 'connected'}
        onChange={setChosen}
      />
      <StatusLine
        phase={setupProblem ? 'error' : phase}
        agentState={agentState}
        problem={setupProblem ?? session.problem}
      />
      <Controls
        phase={phase}
        muted={session.muted}
        canTalk={!setupProblem && agentId !== ''}
        onTalk={() => void session.start(agentId)}
        onHangUp={() => void session.hangUp()}
        onToggleMute={session.toggleMute}
      />
      {connection ? (
        <LiveKitRoom
          key={connection.roomName}
          serverUrl={connection.serverUrl}
          token={connection.token}
          connect
          audio={!session.muted}
          options={ROOM_OPTIONS}
          onConnected={session.roomEvents.onConnected}
          onDisconnected={session.roomEvents.onDisconnected}
          onError={session.roomEvents.onError}
        >
          <SessionView
            roomName={connection.roomName}
            muted={session.muted}
            onAgentState={setAgentState}
          />
        </LiveKitRoom>
      ) : null}
    </main>
  );
}
