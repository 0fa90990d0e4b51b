import { useState, type FormEvent } from 'react';
import { KEY_HINTS } from '../../lib/ops';

interface Props {
  checking: boolean;
  problem: { code: string; message: string } | null;
  onKey: (key: string) => void;
}

/** Where the operator pastes a secret key; it is kept in this tab only. */
export function KeyForm({ checking, problem, onKey }: Props) {
  const [value, setValue] = useState('');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onKey(value);
    setValue('');
  };
  return (
    <form className="key-form" onSubmit={submit}>
      <label htmlFor="ops-key">Operator key</label>
      <input
        id="ops-key"
        type="password"
        autoComplete="off"
        spellCheck={false}
        placeholder="vgw_sk_…"
        value={value}
        onChange={(e) => setValue(e.target.value)}
      />
      <button type="submit" disabled={checking || value.trim() === ''}>
        {checking ? 'Checking…' : 'Use key'}
      </button>
      <p className="hint">
        A secret key with <code>ops:write</code> and <code>sessions:read</code>, made for this page
        with <code>allowBrowser</code>. It stays in this tab (session storage) until the tab closes
        or you forget it.
      </p>
      {problem ? (
        <p role="alert" className="problem" data-code={problem.code}>
          <strong>{problem.code}</strong>: {KEY_HINTS[problem.code] ?? problem.message}
        </p>
      ) : null}
    </form>
  );
}
