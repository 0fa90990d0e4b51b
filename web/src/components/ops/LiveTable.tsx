import { channelLabel, formatDuration, type LiveRow } from '../../lib/ops';

interface Props {
  rows: LiveRow[];
  now: number;
  openRoom: string | null;
  onOpen: (row: LiveRow) => void;
  onEnd: (row: LiveRow) => void;
}

/** LiveKit counts people, not agents: the agent is added when the session says it joined. */
function participants(row: LiveRow): string {
  if (!row.room) return '—';
  const people = row.room.numParticipants;
  // A phone call rings while its agent is already there (the call is answered when it speaks).
  const live = row.session?.status === 'active' || row.session?.status === 'ringing';
  const agent = live && row.session?.participants?.agent.joinedAt;
  return `${people} ${people === 1 ? 'person' : 'people'}${agent ? ' + agent' : ''}`;
}

function state(row: LiveRow): string {
  if (row.session) return row.session.status;
  if (row.phoneLine) return 'waiting for a call';
  return 'no session';
}

function agent(row: LiveRow): string {
  return row.session?.agentId ?? row.phoneLine?.agentId ?? '—';
}

function channel(row: LiveRow): string {
  if (row.session) return channelLabel(row.session);
  return row.phoneLine ? 'phone' : '—';
}

/** Every LiveKit room and live session, one line each, flagged when something is off. */
export function LiveTable({ rows, now, openRoom, onOpen, onEnd }: Props) {
  if (rows.length === 0) {
    return <p className="empty">No rooms and no live sessions.</p>;
  }
  return (
    <table className="live" aria-label="Live rooms and sessions">
      <thead>
        <tr>
          <th scope="col">Room</th>
          <th scope="col">Agent</th>
          <th scope="col">Channel</th>
          <th scope="col">State</th>
          <th scope="col">Duration</th>
          <th scope="col">Participants</th>
          <th scope="col">Flags</th>
          <th scope="col">
            <span className="visually-hidden">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr
            key={row.roomName}
            data-room={row.roomName}
            data-open={openRoom === row.roomName || undefined}
            className={row.orphan || row.overdue || row.noRoom ? 'flagged' : undefined}
          >
            <th scope="row">
              <code>{row.roomName}</code>
            </th>
            <td>{agent(row)}</td>
            <td>{channel(row)}</td>
            <td data-state={state(row)}>{state(row)}</td>
            <td>{formatDuration((now - Date.parse(row.since)) / 1000)}</td>
            <td>{participants(row)}</td>
            <td className="flags">
              {row.orphan ? <span className="flag flag-orphan">orphan</span> : null}
              {row.overdue ? <span className="flag flag-overdue">overdue</span> : null}
              {row.noRoom ? <span className="flag flag-noroom">no room</span> : null}
              {row.phoneLine ? (
                <span className="flag flag-ready" title="this number's next call lands here">
                  {row.phoneLine.number}
                </span>
              ) : null}
            </td>
            <td>
              <div className="actions">
                <button
                  type="button"
                  aria-label={`Open ${row.roomName}`}
                  onClick={() => onOpen(row)}
                >
                  Open
                </button>
                <button
                  type="button"
                  className="end"
                  aria-label={`End ${row.roomName}`}
                  onClick={() => onEnd(row)}
                >
                  End
                </button>
              </div>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
