// Every call to the gateway goes through apiFetch: it adds the page's publishable key and turns
// the gateway's error shape ({"error": {"code", "message"}}) into an ApiError the page can show.

export interface ApiConfig {
  /** '' for the page's own origin (the gateway serves it), or another gateway's address. */
  baseUrl: string;
  apiKey: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

interface ErrorBody {
  error?: { code?: string; message?: string };
}

export function errorFromBody(status: number, body: unknown, fallback: string): ApiError {
  const error = (body as ErrorBody | null)?.error;
  return new ApiError(status, error?.code ?? `http_${status}`, error?.message ?? fallback);
}

export async function apiFetch<T>(
  config: ApiConfig,
  path: string,
  init: { method?: 'GET' | 'POST'; body?: unknown } = {},
): Promise<T> {
  const headers: Record<string, string> = { 'x-api-key': config.apiKey };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(config.baseUrl + path, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  } catch {
    throw new ApiError(0, 'network_error', 'the gateway did not answer');
  }
  const payload: unknown = await response.json().catch(() => null);
  if (!response.ok) throw errorFromBody(response.status, payload, response.statusText);
  return payload as T;
}

/** A thrown value as the person sees it: a stable code and a sentence. */
export function describeError(error: unknown): { code: string; message: string } {
  if (error instanceof ApiError) return { code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'client_error', message };
}
