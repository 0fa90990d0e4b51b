import { useEffect, useRef } from 'react';
import type { LiveRow } from '../../lib/ops';

interface Props {
  row: LiveRow;
  busy: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}

/** Ending disconnects whoever is in the room: asked once more, in a modal dialog. */
export function ConfirmEnd({ row, busy, onConfirm, onCancel }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const el = dialog.current;
    if (el && !el.open) el.showModal();
    return () => el?.close();
  }, []);
  const who = row.session
    ? `the caller (${row.session.userIdentity}) and the ${row.session.agentId} agent are disconnected, and the session is recorded as ended by ops (ops_ended)`
    : 'LiveKit deletes the room and disconnects whoever is in it; no session records it';
  return (
    <dialog
      ref={dialog}
      className="confirm"
      aria-labelledby="confirm-title"
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      <h2 id="confirm-title">
        End <code>{row.roomName}</code>?
      </h2>
      <p>The room is deleted now: {who}.</p>
      <div className="buttons">
        <button type="button" className="end" disabled={busy} onClick={onConfirm}>
          {busy ? 'Ending…' : 'End room'}
        </button>
        <button type="button" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
      </div>
    </dialog>
  );
}
