import { useEffect, useRef } from 'react';
import { useCaptions } from '../hooks/useCaptions';

/** Live captions of both speakers, newest last, kept in view. */
export function Captions() {
  const captions = useCaptions();
  const end = useRef<HTMLLIElement>(null);
  const newest = captions.at(-1)?.text;
  useEffect(() => {
    // Braces matter: Chromium's scrollIntoView returns a promise, which is no effect cleanup.
    void end.current?.scrollIntoView({ block: 'nearest' });
  }, [captions.length, newest]);
  return (
    <ol role="log" aria-label="Captions" aria-live="polite" className="captions">
      {captions.map((c) => (
        <li key={c.id} className={`caption caption-${c.speaker}`} data-speaker={c.speaker} data-final={c.final}>
          <span className="speaker">{c.speaker === 'you' ? 'You' : 'Agent'}</span>
          <span className="text">{c.text}</span>
        </li>
      ))}
      <li ref={end} aria-hidden="true" className="caption-end" />
    </ol>
  );
}
