// The page's settings come from /config.json beside it, so one build serves any deployment: the
// gateway writes its own; a deployment hosting the page elsewhere puts one next to the files.

export interface WebConfig {
  apiBaseUrl: string;
  /** A publishable key (vgw_pk_…): safe in a page, bound to its agents and origins. */
  apiKey: string | null;
  defaultAgentId: string | null;
  /** LiveKit's standard token endpoint on the gateway. */
  tokenEndpoint: string;
}

export async function loadWebConfig(): Promise<WebConfig> {
  const response = await fetch('/config.json', { cache: 'no-store' });
  if (!response.ok) throw new Error(`/config.json answered ${response.status}`);
  const raw = (await response.json()) as Partial<WebConfig>;
  return {
    apiBaseUrl: raw.apiBaseUrl ?? '',
    apiKey: raw.apiKey ?? null,
    defaultAgentId: raw.defaultAgentId ?? null,
    tokenEndpoint: raw.tokenEndpoint ?? '/v1/livekit/token',
  };
}
