import type { SessionPhase } from '../hooks/useVoiceSession';

interface Props {
  phase: SessionPhase;
  muted: boolean;
  canTalk: boolean;
  onTalk: () => void;
  onHangUp: () => void;
  onToggleMute: () => void;
}

/** Talk, Mute and Hang up. Mute works before a call too: the call then starts muted. */
export function Controls({ phase, muted, canTalk, onTalk, onHangUp, onToggleMute }: Props) {
  const inCall = phase === 'connecting' || phase === 'connected';
  return (
    <div className="controls">
      {inCall ? (
        <button type="button" className="hangup" onClick={onHangUp}>
          Hang up
        </button>
      ) : (
        <button type="button" className="talk" onClick={onTalk} disabled={!canTalk}>
          Talk
        </button>
      )}
      <button type="button" className="mute" aria-pressed={muted} onClick={onToggleMute}>
        Mute
      </button>
    </div>
  );
}
