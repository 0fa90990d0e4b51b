import type { ApiConfig } from '../../lib/api-client';
import { useSessionDetail } from '../../hooks/useSessionDetail';
import { formatDuration, formatTime, type LiveRow, type Session, type TimelineStep } from '../../lib/ops';

interface Props {
  api: ApiConfig;
  row: LiveRow;
  now: number;
  onClose: () => void;
  onEnd: (row: LiveRow) => void;
}

const DETAIL_REFRESH_MS = 3000;

/** One room opened: its session (state, who joined when), the setup timeline and what was said. */
export function SessionPanel({ api, row, now, onClose, onEnd }: Props) {
  const detail = useSessionDetail(api, row.roomName, row.session !== null, DETAIL_REFRESH_MS);
  return (
    <section className="panel" aria-label={`Session ${row.roomName}`}>
      <header>
        <h2>
          <code>{row.roomName}</code>
        </h2>
        <button type="button" className="end" onClick={() => onEnd(row)}>
          End…
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </header>
      {detail.status === 'loading' ? <p>Loading…</p> : null}
      {detail.status === 'error' ? (
        <p role="alert" className="problem">
          <strong>{detail.code}</strong>: {detail.message}
        </p>
      ) : null}
      {detail.status === 'no_session' && row.phoneLine ? (
        <p className="ready-note">
          The ready room of phone number {row.phoneLine.number} (agent {row.phoneLine.agentId}):
          its next call lands here and becomes a session. Ending it makes the gateway prepare a
          new one.
        </p>
      ) : null}
      {detail.status === 'no_session' && !row.phoneLine ? (
        <p className="orphan-note">
          No session: LiveKit holds this room, but the gateway did not start it (or its record is
          gone). Created {formatTime(row.room?.createdAt ?? null)}, with{' '}
          {row.room?.numParticipants ?? 0} participant(s). End it to delete the room.
        </p>
      ) : null}
      {detail.status === 'ready' ? (
        <>
          <Summary session={detail.session} now={now} />
          <Timeline steps={detail.session.timeline ?? derivedTimeline(detail.session)} />
          <h3 id="transcript-heading">Transcript</h3>
          {detail.transcript.length === 0 ? (
            <p className="empty">Nothing said yet.</p>
          ) : (
            <ol className="transcript" role="log" aria-labelledby="transcript-heading">
              {detail.transcript.map((s, i) => (
                <li key={`${s.spokenAt}-${i}`} data-speaker={s.speaker}>
                  <time dateTime={s.spokenAt}>{formatTime(s.spokenAt)}</time>
                  <span className="speaker">{s.speaker}</span>
                  <span className="text">{s.text}</span>
                </li>
              ))}
            </ol>
          )}
        </>
      ) : null}
    </section>
  );
}

function Summary({ session, now }: { session: Session; now: number }) {
  const started = session.startedAt ?? session.createdAt;
  const seconds =
    session.durationSeconds ??
    ((session.endedAt ? Date.parse(session.endedAt) : now) - Date.parse(started)) / 1000;
  return (
    <dl className="summary">
      <dt>Session</dt>
      <dd>
        <code>{session.sessionId}</code>
      </dd>
      <dt>Agent</dt>
      <dd>{session.agentId}</dd>
      <dt>Channel</dt>
      <dd>{session.channel}</dd>
      <dt>State</dt>
      <dd data-state={session.status}>
        {session.status}
        {session.endReason ? ` (${session.endReason})` : ''}
      </dd>
      <dt>Caller</dt>
      <dd>{session.userIdentity}</dd>
      {session.phone ? (
        <>
          <dt>Call</dt>
          <dd>
            {session.phone.direction}: {session.phone.callerNumber} → {session.phone.calledNumber}
          </dd>
        </>
      ) : null}
      <dt>Duration</dt>
      <dd>{formatDuration(seconds)}</dd>
      {session.error ? (
        <>
          <dt>Error</dt>
          <dd>{session.error}</dd>
        </>
      ) : null}
    </dl>
  );
}

/** Without the gateway's own timeline, the steps the session's timestamps tell. */
function derivedTimeline(s: Session): TimelineStep[] {
  const stamps: [string, string | null][] = [
    ['created', s.createdAt],
    ['started', s.startedAt],
    ['agentJoined', s.participants?.agent.joinedAt ?? null],
    ['userJoined', s.participants?.user.joinedAt ?? null],
    ['ended', s.endedAt],
  ];
  const created = Date.parse(s.createdAt);
  const known = stamps
    .filter((x): x is [string, string] => x[1] !== null)
    .sort((a, b) => Date.parse(a[1]) - Date.parse(b[1]));
  return [
    ...known.map(([step, at], i) => ({
      step,
      at,
      msSinceCreated: Date.parse(at) - created,
      msSincePrevious: i === 0 ? null : Date.parse(at) - Date.parse(known[i - 1]![1]),
    })),
    ...stamps
      .filter(([step, at]) => at === null && step !== 'ended')
      .map(([step]) => ({ step, at: null, msSinceCreated: null, msSincePrevious: null })),
  ];
}

function Timeline({ steps }: { steps: TimelineStep[] }) {
  return (
    <>
      <h3 id="timeline-heading">Setup timeline</h3>
      <table className="timeline" aria-labelledby="timeline-heading">
        <thead>
          <tr>
            <th scope="col">Step</th>
            <th scope="col">At</th>
            <th scope="col">Since created</th>
            <th scope="col">Since previous</th>
          </tr>
        </thead>
        <tbody>
          {steps.map((step) => (
            <tr key={step.step} data-step={step.step} className={step.at ? undefined : 'missing'}>
              <th scope="row">{step.step}</th>
              <td>{step.at ? formatTime(step.at) : 'not yet'}</td>
              <td>{step.msSinceCreated === null ? '—' : `${Math.round(step.msSinceCreated)} ms`}</td>
              <td>{step.msSincePrevious === null ? '—' : `+${Math.round(step.msSincePrevious)} ms`}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
