import { useCallback, useEffect, useRef } from 'react';

/** Calls `read` now and then `everyMs` after each read ends (a slow gateway delays the next
 * read instead of piling reads up), while `key` is non-null; a new key starts over. `read` gets
 * `current()`, false once its answer would be stale (the key changed or the page went away).
 * Returns `refresh`: read now (or right after the read under way). */
export function usePoll(
  key: string | null,
  everyMs: number,
  read: (current: () => boolean) => Promise<void>,
): () => void {
  const latest = useRef(read);
  latest.current = read;
  const kick = useRef<() => void>(() => {});

  useEffect(() => {
    if (key === null) return;
    let live = true;
    let reading = false;
    let again = false;
    let timer: number | undefined;
    const current = () => live;
    const once = async () => {
      reading = true;
      window.clearTimeout(timer);
      try {
        await latest.current(current);
      } finally {
        reading = false;
        if (live && again) {
          again = false;
          void once();
        } else if (live) {
          timer = window.setTimeout(() => void once(), everyMs);
        }
      }
    };
    kick.current = () => {
      if (reading) again = true;
      else void once();
    };
    void once();
    return () => {
      live = false;
      window.clearTimeout(timer);
      kick.current = () => {};
    };
  }, [key, everyMs]);

  return useCallback(() => kick.current(), []);
}
