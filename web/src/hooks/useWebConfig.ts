import { useEffect, useState } from 'react';
import type { ApiConfig } from '../lib/api-client';
import { loadWebConfig, type WebConfig } from '../lib/config';

export type WebConfigState =
  | { status: 'loading' }
  | { status: 'ready'; config: WebConfig; api: ApiConfig }
  | { status: 'error'; code: string; message: string; config?: WebConfig };

export function useWebConfig(): WebConfigState {
  const [state, setState] = useState<WebConfigState>({ status: 'loading' });
  useEffect(() => {
    let live = true;
    loadWebConfig()
      .then((config) => {
        if (!live) return;
        if (!config.apiKey) {
          setState({
            status: 'error',
            code: 'no_publishable_key',
            message: 'this page has no publishable key: set VOICEGW_WEB_PUBLISHABLE_KEY',
            config,
          });
          return;
        }
        setState({ status: 'ready', config, api: { baseUrl: config.apiBaseUrl, apiKey: config.apiKey } });
      })
      .catch((error: unknown) => {
        if (live) setState({ status: 'error', code: 'config_unavailable', message: String(error) });
      });
    return () => {
      live = false;
    };
  }, []);
  return state;
}
