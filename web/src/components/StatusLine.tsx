import type { AgentState } from '@livekit/components-react';
import type { SessionPhase, SessionProblem } from '../hooks/useVoiceSession';

const AGENT_STATE: Partial<Record<AgentState, string>> = {
  connecting: 'waiting for the agent',
  initializing: 'the agent is starting',
  'pre-connect-buffering': 'the agent is starting',
  idle: 'the agent is idle',
  listening: 'the agent is listening',
  thinking: 'the agent is thinking',
  speaking: 'the agent is speaking',
  failed: 'the agent failed',
};

interface Props {
  phase: SessionPhase;
  agentState: AgentState | null;
  problem: SessionProblem | null;
}

/** One line that says where the session is, for eyes and screen readers (role=status). */
export function StatusLine({ phase, agentState, problem }: Props) {
  let text: string;
  switch (phase) {
    case 'idle':
      text = 'Idle: choose an agent and press Talk';
      break;
    case 'connecting':
      text = 'Connecting…';
      break;
    case 'connected':
      text = `Connected: ${AGENT_STATE[agentState ?? 'connecting'] ?? agentState}`;
      break;
    case 'ended':
      text = 'Call ended';
      break;
    case 'error':
      text = problem ? `Error ${problem.code}: ${problem.message}` : 'Error';
      break;
  }
  return (
    <p
      role="status"
      className={`status status-${phase}`}
      data-phase={phase}
      data-agent-state={phase === 'connected' ? (agentState ?? 'connecting') : undefined}
    >
      {text}
    </p>
  );
}
