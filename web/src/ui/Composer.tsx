import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { useChat, useSlowDown } from '../chat/hooks';
import { MAX_FILES, sendFiles, type FileSend } from '../chat/upload';
import { FileTray } from './FileTray';
import { PlusIcon, SendIcon } from './icons';
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

  // Files attached (button, drop or paste) wait here until sent with the text.
  const [files, setFiles] = useState<File[]>([]);
  const [progress, setProgress] = useState<number | null>(null);
  const [fileError, setFileError] = useState<string | null>(null);
  const sending = useRef<FileSend | null>(null);
  const picker = useRef<HTMLInputElement>(null);

  const attach = (more: FileList | File[]) => {
    const all = [...files, ...Array.from(more)];
    setFileError(all.length > MAX_FILES ? `At most ${MAX_FILES} files go with one message.` : null);
    setFiles(all.slice(0, MAX_FILES));
  };

  const sendWithFiles = () => {
    setProgress(0);
    setFileError(null);
    let origin: string;
    try {
      origin = chat.edgeOrigin();
    } catch {
      origin = '';
    }
    if (!origin || !chat.mediaUrl) {
      setProgress(null);
      setFileError('Not connected yet; try again in a moment.');
      return;
    }
    const upload = sendFiles(origin, chat.mediaUrl, channelId, text, files, setProgress);
    sending.current = upload;
    upload.done
      .then(
        () => {
          setFiles([]);
          setText('');
        },
        (e: Error) => setFileError(e.message === 'cancelled' ? null : e.message),
      )
      .finally(() => {
        sending.current = null;
        setProgress(null);
      });
  };

  const send = () => {
    if (disabled || [...text].length > MAX || progress !== null) return;
    if (files.length) return sendWithFiles();
    if (!text.trim()) return;
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
      onDragOver={(e) => {
        if (!disabled && e.dataTransfer.types.includes('Files')) e.preventDefault();
      }}
      onDrop={(e) => {
        if (disabled || !e.dataTransfer.files.length) return;
        e.preventDefault();
        attach(e.dataTransfer.files);
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
      <FileTray
        files={files}
        progress={progress}
        error={fileError}
        onRemove={(i) => setFiles(files.filter((_, j) => j !== i))}
        onCancel={() => sending.current?.cancel()}
      />
      <input
        ref={picker}
        type="file"
        multiple
        hidden
        aria-label="Attach files"
        onChange={(e) => {
          if (e.target.files) attach(e.target.files);
          e.target.value = '';
        }}
      />
      <button
        type="button"
        className="send"
        aria-label="Attach files"
        disabled={!!disabled || progress !== null}
        onClick={() => picker.current?.click()}
      >
        <PlusIcon />
      </button>
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
        onPaste={(e) => {
          if (!disabled && e.clipboardData.files.length) {
            e.preventDefault();
            attach(e.clipboardData.files);
          }
        }}
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
      <button
        type="submit"
        className="send"
        aria-label="Send"
        disabled={!!disabled || (!text.trim() && !files.length) || over || progress !== null}
      >
        <SendIcon />
      </button>
    </form>
  );
}
