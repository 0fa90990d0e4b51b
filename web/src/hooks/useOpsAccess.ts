import { useCallback, useEffect, useState } from 'react';
import { describeError, type ApiConfig } from '../lib/api-client';
import { opsApi } from '../lib/ops';

// The operator's key lives in this tab's sessionStorage only: gone when the tab closes, never in
// localStorage or a cookie, sent nowhere but to the gateway's API.
const STORAGE_KEY = 'voicegw.opsKey';

export type OpsAccess =
  | { status: 'none'; problem: { code: string; message: string } | null }
  | { status: 'checking' }
  | { status: 'ready'; api: ApiConfig };

const storage = {
  get: () => {
    try {
      return window.sessionStorage.getItem(STORAGE_KEY);
    } catch {
      return null; // storage disabled: the key is asked for again
    }
  },
  set: (value: string | null) => {
    try {
      if (value === null) window.sessionStorage.removeItem(STORAGE_KEY);
      else window.sessionStorage.setItem(STORAGE_KEY, value);
    } catch {
      // storage disabled: the key lives in this page's memory only
    }
  },
};

/** The pasted key, checked once (it may operate from this page and read sessions), then kept
 * for the tab. A refused key is forgotten, with the reason. */
export function useOpsAccess(baseUrl: string | null) {
  const [key, setKey] = useState<string | null>(storage.get);
  const [access, setAccess] = useState<OpsAccess>({ status: 'none', problem: null });

  useEffect(() => {
    if (baseUrl === null || key === null) return;
    let live = true;
    const api = { baseUrl, apiKey: key };
    setAccess({ status: 'checking' });
    Promise.all([opsApi.checkAccess(api), opsApi.liveSessions(api)])
      .then(() => live && setAccess({ status: 'ready', api }))
      .catch((error: unknown) => {
        if (!live) return;
        storage.set(null);
        setKey(null);
        setAccess({ status: 'none', problem: describeError(error) });
      });
    return () => {
      live = false;
    };
  }, [baseUrl, key]);

  const enter = useCallback((value: string) => {
    const trimmed = value.trim();
    if (!trimmed) return;
    storage.set(trimmed);
    setKey(trimmed);
  }, []);
  const forget = useCallback(() => {
    storage.set(null);
    setKey(null);
    setAccess({ status: 'none', problem: null });
  }, []);
  return { access, enter, forget };
}
