// Two ways to get into a room, both starting the same kind of session on the gateway:
// our API (POST /v1/sessions/start) and LiveKit's standard token endpoint, through
// livekit-client's own endpoint TokenSource, as LiveKit's starter apps do.
import { TokenSource, decodeTokenPayload } from 'livekit-client';
import { ApiError, apiFetch, errorFromBody, type ApiConfig } from './api-client';

export interface Connection {
  serverUrl: string;
  token: string;
  roomName: string;
}

export type ConnectVia = 'sessions' | 'token-endpoint';

export type Connector = (agentId: string) => Promise<Connection>;

interface StartSessionResponse {
  livekitUrl: string;
  userToken: string;
  roomName: string;
}

export function viaSessionsApi(api: ApiConfig): Connector {
  return async (agentId) => {
    const started = await apiFetch<StartSessionResponse>(api, '/v1/sessions/start', {
      body: { agentId },
    });
    return { serverUrl: started.livekitUrl, token: started.userToken, roomName: started.roomName };
  };
}

export function viaTokenEndpoint(api: ApiConfig, endpoint: string): Connector {
  const source = TokenSource.endpoint(api.baseUrl + endpoint, {
    headers: { 'x-api-key': api.apiKey },
  });
  return async (agentId) => {
    let details;
    try {
      // force: every Talk is a new session, never a cached token for the last one.
      details = await source.fetch({ agentName: agentId }, true);
    } catch (error) {
      throw endpointError(error);
    }
    const room = decodeTokenPayload(details.participantToken).video?.room;
    if (!room) throw new ApiError(0, 'invalid_token', 'the token names no room');
    return { serverUrl: details.serverUrl, token: details.participantToken, roomName: room };
  };
}

/** The TokenSource puts the endpoint's answer in its error text: recover our code from it. */
function endpointError(error: unknown): ApiError {
  const text = error instanceof Error ? error.message : String(error);
  const match = /received (\d+) \/ ([\s\S]*)$/.exec(text);
  if (!match) return new ApiError(0, 'network_error', 'the token endpoint did not answer');
  let body: unknown = null;
  try {
    body = JSON.parse(match[2] ?? '');
  } catch {
    // not our error shape: the status alone
  }
  return errorFromBody(Number(match[1]), body, text);
}
