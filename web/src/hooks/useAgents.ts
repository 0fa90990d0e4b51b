import { useEffect, useState } from 'react';
import { apiFetch, describeError, type ApiConfig } from '../lib/api-client';

export interface AgentListing {
  id: string;
  name: string;
  description: string;
  language: string;
}

export type AgentsState =
  | { status: 'loading' }
  | { status: 'ready'; agents: AgentListing[] }
  | { status: 'error'; code: string; message: string };

/** The agents this page's key may talk to (GET /v1/agents). */
export function useAgents(api: ApiConfig | null): AgentsState {
  const [state, setState] = useState<AgentsState>({ status: 'loading' });
  useEffect(() => {
    if (!api) return;
    let live = true;
    apiFetch<{ data: AgentListing[] }>(api, '/v1/agents')
      .then((body) => live && setState({ status: 'ready', agents: body.data }))
      .catch((error: unknown) => live && setState({ status: 'error', ...describeError(error) }));
    return () => {
      live = false;
    };
  }, [api]);
  return state;
}
