import { useState } from 'react';
import { describeError, type ApiConfig } from '../lib/api-client';
import { mergeLive, opsApi, type LiveRow } from '../lib/ops';
import { usePoll } from './usePoll';

export interface LiveRooms {
  rows: LiveRow[] | null;
  updatedAt: number | null;
  problem: { code: string; message: string } | null;
  refresh: () => void;
}

/** LiveKit's rooms and the live sessions, merged into one table, read every `everyMs`. */
export function useLiveRooms(api: ApiConfig | null, everyMs: number): LiveRooms {
  const [rows, setRows] = useState<LiveRow[] | null>(null);
  const [updatedAt, setUpdatedAt] = useState<number | null>(null);
  const [problem, setProblem] = useState<LiveRooms['problem']>(null);
  const refresh = usePoll(api ? api.apiKey : null, everyMs, async (current) => {
    if (!api) return;
    try {
      const [rooms, sessions] = await Promise.all([opsApi.rooms(api), opsApi.liveSessions(api)]);
      if (!current()) return;
      setRows(mergeLive(rooms.data, sessions.data));
      setUpdatedAt(Date.now());
      setProblem(null);
    } catch (error) {
      if (current()) setProblem(describeError(error));
    }
  });
  return { rows, updatedAt, problem, refresh };
}
