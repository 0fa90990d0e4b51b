// What the ops page reads from the gateway (GET /v1/ops/rooms, /v1/sessions, one session and its
// transcript) and how it puts LiveKit's rooms and the live sessions into one table.

import { apiFetch, type ApiConfig } from './api-client';

export type SessionStatus = 'starting' | 'ringing' | 'active' | 'ended' | 'failed';

/** One step of a session's setup, when the gateway reports its timeline. */
export interface TimelineStep {
  step: string;
  at: string | null;
  msSinceCreated: number | null;
  msSincePrevious: number | null;
}

export interface Participant {
  identity: string | null;
  joinedAt: string | null;
}

/** The phone side of a `phone` session. */
export interface PhoneLeg {
  direction: 'inbound' | 'outbound';
  callerNumber: string;
  calledNumber: string;
  sipCallId: string | null;
}

/** A phone number whose next call lands in a room (its ready room). */
export interface PhoneLine {
  numberId: string;
  number: string;
  agentId: string;
}

export interface Session {
  sessionId: string;
  roomName: string;
  agentId: string;
  userIdentity: string;
  channel: string;
  status: SessionStatus;
  endReason: string | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  durationSeconds: number | null;
  participants?: { user: Participant; agent: Participant } | null;
  error?: string | null;
  timeline?: TimelineStep[] | null;
  phone?: PhoneLeg | null;
}

export interface Room {
  roomName: string;
  sid: string;
  numParticipants: number;
  createdAt: string;
  orphan: boolean;
  overdue: boolean;
  phoneLine: PhoneLine | null;
  session: Session | null;
}

export interface TranscriptSegment {
  speaker: string;
  text: string;
  spokenAt: string;
}

export interface EndedRoom {
  roomName: string;
  deleted: boolean;
  session: Session | null;
}

/** One line of the ops table: a LiveKit room, a live session, or both. */
export interface LiveRow {
  roomName: string;
  session: Session | null;
  /** LiveKit's view; null when LiveKit has no room of that name. */
  room: Room | null;
  since: string;
  orphan: boolean;
  overdue: boolean;
  /** A live session whose room LiveKit does not list (not created yet, or gone). */
  noRoom: boolean;
  /** A phone number's ready room: no session yet, the number's next call lands here. */
  phoneLine: PhoneLine | null;
}

export const opsApi = {
  rooms: (api: ApiConfig) => apiFetch<{ data: Room[] }>(api, '/v1/ops/rooms'),
  liveSessions: (api: ApiConfig) =>
    apiFetch<{ data: Session[] }>(api, '/v1/sessions?status=starting,ringing,active&limit=200'),
  session: (api: ApiConfig, room: string) =>
    apiFetch<Session>(api, `/v1/sessions/${encodeURIComponent(room)}`),
  transcript: (api: ApiConfig, room: string) =>
    apiFetch<{ segments: TranscriptSegment[] }>(
      api,
      `/v1/sessions/${encodeURIComponent(room)}/transcript`,
    ),
  endRoom: (api: ApiConfig, room: string) =>
    apiFetch<EndedRoom>(api, `/v1/ops/rooms/${encodeURIComponent(room)}/end`, { method: 'POST' }),
  /** A reaper pass that changes nothing: proves the key may operate from this page (a POST,
   * so the browser sends Origin and the gateway applies its browser rule, as End will). */
  checkAccess: (api: ApiConfig) =>
    apiFetch<unknown>(api, '/v1/ops/reap', { method: 'POST', body: { dryRun: true } }),
};

export function mergeLive(rooms: Room[], live: Session[]): LiveRow[] {
  const rows = new Map<string, LiveRow>();
  for (const room of rooms) {
    const session = room.session;
    rows.set(room.roomName, {
      roomName: room.roomName,
      session,
      room,
      since: session?.startedAt ?? session?.createdAt ?? room.createdAt,
      orphan: room.orphan,
      overdue: room.overdue,
      noRoom: false,
      phoneLine: session ? null : room.phoneLine,
    });
  }
  for (const session of live) {
    if (rows.has(session.roomName)) continue;
    rows.set(session.roomName, {
      roomName: session.roomName,
      session,
      room: null,
      since: session.startedAt ?? session.createdAt,
      orphan: false,
      overdue: false,
      noRoom: true,
      phoneLine: null,
    });
  }
  // What needs a look first (flagged), then the newest.
  const flagged = (r: LiveRow) => (r.orphan || r.overdue || r.noRoom ? 0 : 1);
  return [...rows.values()].sort(
    (a, b) => flagged(a) - flagged(b) || Date.parse(b.since) - Date.parse(a.since),
  );
}

/** A session's channel, with a phone call's direction: `phone in`, `phone out`. */
export function channelLabel(session: Session): string {
  if (!session.phone) return session.channel;
  return `${session.channel} ${session.phone.direction === 'inbound' ? 'in' : 'out'}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

export function formatTime(iso: string | null): string {
  return iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : '—';
}

/** What a refused operator key means, and what to do about it. */
export const KEY_HINTS: Record<string, string> = {
  secret_key_in_browser:
    'The gateway refuses this secret key from a browser. Make the page its own key with ' +
    'allowBrowser: voicegw keys create --name ops-console --scope ops:write ' +
    '--scope sessions:read --allow-browser',
  insufficient_scope: 'This key lacks a scope the page needs: ops:write and sessions:read.',
  wrong_key_type: 'A publishable key cannot operate: use a secret key.',
  invalid_api_key: 'The gateway does not know this key, or it was revoked or expired.',
  missing_api_key: 'Paste a key first.',
};
