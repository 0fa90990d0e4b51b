import { useState, type FormEvent } from 'react';
import { useConnectionState } from '@livekit/components-react';
import { ConnectionState } from 'livekit-client';
import { MAX_MESSAGE_CHARS } from '../hooks/useTypedMessages';

interface Props {
  onSend: (text: string) => Promise<void>;
}

/** A text box for the call: for when speaking is not possible (noise, hearing, privacy). The
 * agent answers a typed message in voice and captions, like a spoken one. */
export function ChatBox({ onSend }: Props) {
  const [text, setText] = useState('');
  const [sending, setSending] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const connected = useConnectionState() === ConnectionState.Connected;
  const message = text.trim();

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (!message || sending) return;
    setSending(true);
    setProblem(null);
    try {
      await onSend(message);
      setText('');
    } catch {
      setProblem('The message could not be sent. Try again.');
    } finally {
      setSending(false);
    }
  }

  return (
    <form className="chatbox" aria-label="Type to the agent" onSubmit={(e) => void submit(e)}>
      <input
        type="text"
        aria-label="Message"
        placeholder="Type a message"
        value={text}
        maxLength={MAX_MESSAGE_CHARS}
        disabled={!connected}
        onChange={(e) => setText(e.target.value)}
      />
      <button type="submit" disabled={!connected || sending || !message}>
        Send
      </button>
      {problem ? (
        <p role="alert" className="chatbox-problem">
          {problem}
        </p>
      ) : null}
    </form>
  );
}
