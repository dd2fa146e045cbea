import { useRef, useState, type KeyboardEvent } from 'react';
import { useChat, useSlowDown } from '../chat/hooks';
import { SendIcon } from './icons';

const MAX = 4000;

/** Shown while the channel's sends wait because the edge said slow down. */
export function SlowDownNotice({ channelId }: { channelId: string }) {
  if (!useSlowDown(channelId)) return null;
  return (
    <p className="slow-down" role="status">
      You are sending messages too quickly. The rest will follow in a moment, in order.
    </p>
  );
}

export function Composer({
  channelId,
  label,
  onEditLast,
  disabled,
}: {
  channelId: string;
  label: string;
  onEditLast: () => void;
  /** Why the user may not send here now (a server's time-out or permissions); absent: they may. */
  disabled?: string;
}) {
  const chat = useChat();
  const [text, setText] = useState('');
  const ref = useRef<HTMLTextAreaElement>(null);

  const send = () => {
    if (disabled || !text.trim() || [...text].length > MAX) return;
    chat.send(channelId, text);
    setText('');
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    }
    // As in Discord: Up in an empty box edits your last message.
    if (e.key === 'ArrowUp' && text === '') {
      e.preventDefault();
      onEditLast();
    }
  };

  const over = [...text].length > MAX;
  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      <textarea
        ref={ref}
        aria-label={label}
        placeholder={disabled ?? `${label}`}
        disabled={!!disabled}
        rows={Math.min(8, text.split('\n').length)}
        value={text}
        autoFocus
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value.trim()) chat.typing(channelId);
        }}
        onKeyDown={onKeyDown}
        aria-invalid={over}
        aria-describedby="composer-hint"
      />
      <span id="composer-hint" className="sr-only">
        Enter sends, Shift+Enter starts a new line, Up edits your last message.
      </span>
      {over && (
        <span className="field-error" role="alert">
          {[...text].length - MAX} characters over the limit
        </span>
      )}
      {disabled && (
        <span className="composer-blocked" role="status">
          {disabled}
        </span>
      )}
      <button type="submit" className="send" aria-label="Send" disabled={!!disabled || !text.trim() || over}>
        <SendIcon />
      </button>
    </form>
  );
}
