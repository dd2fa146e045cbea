import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { useChat, useSlowDown } from '../chat/hooks';
import { SendIcon } from './icons';
import { loadEmoji, searchEmoji, shortcodeAt, type EmojiEntry } from './emoji';

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
  replyTo,
  replyName,
  onCancelReply,
}: {
  channelId: string;
  label: string;
  onEditLast: () => void;
  /** The message this one will answer, if any. */
  replyTo?: string | null;
  replyName?: string;
  onCancelReply?: () => void;
  /** Why the user may not send here now (a server's time-out or permissions); absent: they may. */
  disabled?: string;
}) {
  const chat = useChat();
  const [text, setText] = useState('');
  const ref = useRef<HTMLTextAreaElement>(null);
  // `:shortcode` completion: the emoji whose names start with what is being typed.
  const [emoji, setEmoji] = useState<EmojiEntry[] | null>(null);
  const typed = shortcodeAt(text);
  const suggestions = typed && emoji ? searchEmoji(emoji, typed, 6) : [];
  useEffect(() => {
    if (typed && !emoji) void loadEmoji().then(setEmoji);
  }, [typed, emoji]);
  const complete = (unicode: string) => {
    setText((t) => t.replace(/:([a-z0-9_+-]{2,})$/i, unicode + ' '));
    ref.current?.focus();
  };

  const send = () => {
    if (disabled || !text.trim() || [...text].length > MAX) return;
    chat.send(channelId, text, replyTo ?? undefined);
    setText('');
    onCancelReply?.();
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if ((e.key === 'Tab' || e.key === 'Enter') && suggestions.length > 0) {
      e.preventDefault();
      complete(suggestions[0].unicode);
      return;
    }
    if (e.key === 'Escape' && replyTo) onCancelReply?.();
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
      {replyTo && (
        <div className="replying" role="status">
          Replying to <strong>{replyName ?? 'a message'}</strong>{' '}
          <button type="button" className="link" aria-label="Cancel reply" onClick={onCancelReply}>
            ✕
          </button>
        </div>
      )}
      {suggestions.length > 0 && (
        <ul className="emoji-suggestions" role="listbox" aria-label="Emoji">
          {suggestions.map((e, i) => (
            <li key={e.unicode} role="option" aria-selected={i === 0}>
              <button
                type="button"
                onMouseDown={(ev) => ev.preventDefault()}
                onClick={() => complete(e.unicode)}
              >
                {e.unicode} :{e.names[0]}:
              </button>
            </li>
          ))}
        </ul>
      )}
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
