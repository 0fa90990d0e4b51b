import { useEffect, useState } from 'react';
import { ConfirmEnd } from '../components/ops/ConfirmEnd';
import { KeyForm } from '../components/ops/KeyForm';
import { LiveTable } from '../components/ops/LiveTable';
import { SessionPanel } from '../components/ops/SessionPanel';
import { useLiveRooms } from '../hooks/useLiveRooms';
import { useNow } from '../hooks/useNow';
import { useOpsAccess } from '../hooks/useOpsAccess';
import type { WebConfigState } from '../hooks/useWebConfig';
import { describeError, type ApiConfig } from '../lib/api-client';
import { KEY_HINTS, opsApi, type LiveRow } from '../lib/ops';

const TABLE_REFRESH_MS = 3000;

/** The gateway's address from /config.json (the page's own origin when it has none). */
function baseUrlOf(setup: WebConfigState): string | null {
  if (setup.status === 'loading') return null;
  return setup.config?.apiBaseUrl ?? '';
}

/** `/ops`: what is live right now, one look, with an operator's key. */
export function OpsPage({ setup }: { setup: WebConfigState }) {
  const { access, enter, forget } = useOpsAccess(baseUrlOf(setup));
  useEffect(() => {
    document.title = 'Live rooms · voice gateway';
  }, []);
  return (
    <main className="ops">
      <h1>Live rooms</h1>
      {access.status === 'ready' ? (
        <Console api={access.api} onForget={forget} />
      ) : (
        <KeyForm
          checking={access.status === 'checking'}
          problem={access.status === 'none' ? access.problem : null}
          onKey={enter}
        />
      )}
    </main>
  );
}

interface Notice {
  kind: 'done' | 'problem';
  text: string;
}

function Console({ api, onForget }: { api: ApiConfig; onForget: () => void }) {
  const live = useLiveRooms(api, TABLE_REFRESH_MS);
  const now = useNow(1000);
  const [open, setOpen] = useState<LiveRow | null>(null);
  const [ending, setEnding] = useState<LiveRow | null>(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<Notice | null>(null);

  // The open row follows the table's latest read of it.
  const openRow = open ? (live.rows?.find((r) => r.roomName === open.roomName) ?? open) : null;

  const endRoom = async (row: LiveRow) => {
    setBusy(true);
    try {
      const ended = await opsApi.endRoom(api, row.roomName);
      const what = ended.session
        ? `session ${ended.session.status} (${ended.session.endReason ?? 'no reason'})`
        : 'no session';
      setNotice({
        kind: 'done',
        text: `Ended ${row.roomName}: ${ended.deleted ? 'room deleted' : 'no room left'}, ${what}.`,
      });
    } catch (error) {
      const { code, message } = describeError(error);
      setNotice({ kind: 'problem', text: `${code}: ${KEY_HINTS[code] ?? message}` });
    } finally {
      setBusy(false);
      setEnding(null);
      live.refresh();
    }
  };

  const count = live.rows?.length ?? 0;
  return (
    <>
      <div className="toolbar">
        <p role="status" className={live.problem ? 'status status-error' : 'status'}>
          {live.problem
            ? `Error ${live.problem.code}: ${live.problem.message}`
            : live.rows === null
              ? 'Loading…'
              : `${count} room${count === 1 ? '' : 's'} or live session${count === 1 ? '' : 's'}` +
                (live.updatedAt ? `, updated ${new Date(live.updatedAt).toLocaleTimeString([], { hour12: false })}` : '')}
        </p>
        <button type="button" onClick={live.refresh}>
          Refresh
        </button>
        <button type="button" onClick={onForget}>
          Forget key
        </button>
      </div>
      {notice ? (
        <p className={`notice notice-${notice.kind}`} role={notice.kind === 'problem' ? 'alert' : 'note'}>
          {notice.text}
        </p>
      ) : null}
      {live.rows ? (
        <LiveTable
          rows={live.rows}
          now={now}
          openRoom={openRow?.roomName ?? null}
          onOpen={setOpen}
          onEnd={setEnding}
        />
      ) : null}
      {openRow ? (
        <SessionPanel
          key={openRow.roomName}
          api={api}
          row={openRow}
          now={now}
          onClose={() => setOpen(null)}
          onEnd={setEnding}
        />
      ) : null}
      {ending ? (
        <ConfirmEnd
          row={ending}
          busy={busy}
          onConfirm={() => void endRoom(ending)}
          onCancel={() => setEnding(null)}
        />
      ) : null}
    </>
  );
}
