// The session a person has with an agent, idle → connecting → connected → ended (or error).
// Talk starts a session on the gateway and hands its room to <LiveKitRoom>; Hang up ends it on
// the gateway (the room closes for the agent too) and brings the page back to idle.
import { useCallback, useRef, useState } from 'react';
import type { DisconnectReason } from 'livekit-client';
import { apiFetch, describeError, type ApiConfig } from '../lib/api-client';
import type { Connection, Connector } from '../lib/connect';

export type SessionPhase = 'idle' | 'connecting' | 'connected' | 'ended' | 'error';

export interface SessionProblem {
  code: string;
  message: string;
}

export interface VoiceSession {
  phase: SessionPhase;
  connection: Connection | null;
  problem: SessionProblem | null;
  /** The microphone's wish; applied when the room connects and whenever it changes. */
  muted: boolean;
  start: (agentId: string) => Promise<void>;
  hangUp: () => Promise<void>;
  toggleMute: () => void;
  /** For <LiveKitRoom>. */
  roomEvents: {
    onConnected: () => void;
    onDisconnected: (reason?: DisconnectReason) => void;
    onError: (error: unknown) => void;
  };
}

export function useVoiceSession(api: ApiConfig | null, connector: Connector | null): VoiceSession {
  const [phase, setPhase] = useState<SessionPhase>('idle');
  const [connection, setConnection] = useState<Connection | null>(null);
  const [problem, setProblem] = useState<SessionProblem | null>(null);
  const [muted, setMuted] = useState(false);
  // Set while this page ends the session, so the room's disconnect is not read as a dropped call.
  const leaving = useRef(false);

  const fail = useCallback((error: unknown) => {
    setProblem(describeError(error));
    setPhase('error');
    setConnection(null);
  }, []);

  const start = useCallback(
    async (agentId: string) => {
      if (!connector) return;
      leaving.current = false;
      setProblem(null);
      setPhase('connecting');
      try {
        setConnection(await connector(agentId));
      } catch (error) {
        fail(error);
      }
    },
    [connector, fail],
  );

  const hangUp = useCallback(async () => {
    leaving.current = true;
    // The gateway ends the session first (client_ended) and closes the room for the agent too;
    // leaving the room first could let LiveKit's room_finished arrive before it.
    if (connection && api) {
      try {
        await apiFetch(api, '/v1/sessions/end', { body: { roomName: connection.roomName } });
      } catch (error) {
        setProblem(describeError(error));
      }
    }
    setConnection(null);
    setPhase('idle');
  }, [api, connection]);

  const onConnected = useCallback(() => setPhase('connected'), []);
  const onDisconnected = useCallback(() => {
    if (leaving.current) return;
    setConnection(null);
    setPhase('ended');
  }, []);
  const roomEvents = { onConnected, onDisconnected, onError: fail };

  const toggleMute = useCallback(() => setMuted((m) => !m), []);

  return { phase, connection, problem, muted, start, hangUp, toggleMute, roomEvents };
}
