import { useEffect, useRef } from 'react';
import { useCaptions, type Caption } from '../hooks/useCaptions';

/** Live captions of both speakers, newest last, kept in view; what the person typed in the
 * call (`typed`) is placed among them by time. */
export function Captions({ typed = [] }: { typed?: Caption[] }) {
  const spoken = useCaptions();
  const captions = typed.length
    ? [...spoken, ...typed].sort((a, b) => a.at - b.at)
    : spoken;
  const end = useRef<HTMLLIElement>(null);
  const newest = captions.at(-1)?.text;
  useEffect(() => {
    // Braces matter: Chromium's scrollIntoView returns a promise, which is no effect cleanup.
    void end.current?.scrollIntoView({ block: 'nearest' });
  }, [captions.length, newest]);
  return (
    <ol role="log" aria-label="Captions" aria-live="polite" className="captions">
      {captions.map((c) => (
        <li
          key={c.id}
          className={`caption caption-${c.speaker}`}
          data-speaker={c.speaker}
          data-final={c.final}
          data-typed={c.typed ? 'true' : undefined}
        >
          <span className="speaker">{c.speaker === 'you' ? 'You' : 'Agent'}</span>
          <span className="text">{c.text}</span>
        </li>
      ))}
      <li ref={end} aria-hidden="true" className="caption-end" />
    </ol>
  );
}
