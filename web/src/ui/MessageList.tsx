// The message list: virtualised (only the rows on screen are in the DOM, so a channel of 10,000
// messages scrolls as lightly as one of 10), stuck to the bottom while the reader is there, and
// loading older pages when they scroll near the top without moving what they are looking at.
import { useVirtualizer } from '@tanstack/react-virtual';
import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import type { Channel, User } from '../api/types';
import { useBlocked, useChat, useMessages, useReceipts, useUsers } from '../chat/hooks';
import type { ChatMessage } from '../chat/messageList';
import { lastConfirmed } from '../chat/messageList';
import { compareIds } from '../chat/snowflake';
import { displayName, dmPeer } from '../chat/store';
import { Avatar } from './Avatar';
import { RichText } from './RichText';
import { buildRows, type Row } from './rows';

const NEAR_BOTTOM_PX = 80;
const NEAR_TOP_PX = 300;

export function MessageList({
  channel,
  editing,
  onEdit,
}: {
  channel: Channel;
  editing: string | null;
  onEdit: (id: string | null) => void;
}) {
  const chat = useChat();
  const users = useUsers();
  const { data: list, isError, refetch } = useMessages(channel.id);
  const receipts = useReceipts(channel.id);
  const items = useMemo(() => list?.items ?? [], [list]);
  // Messages by people I block collapse into "N blocked messages", each run shown on request.
  const blocked = useBlocked();
  const [revealed, setRevealed] = useState<ReadonlySet<string>>(() => new Set());
  const rows = useMemo(
    () => buildRows(items, Date.now(), (m) => m.author_id in blocked, revealed),
    [items, blocked, revealed],
  );
  const scrollRef = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const lastKey = useRef<string | null>(null);
  // New messages arrived while the reader was scrolled up: offer the way back down.
  const [behind, setBehind] = useState(false);
  const anchor = useRef<{ key: string; offset: number } | null>(null);
  const [loadingOlder, setLoadingOlder] = useState(false);

  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: (i) =>
      rows[i]?.kind === 'day' ? 40 : rows[i] && (rows[i] as { head: boolean }).head ? 64 : 28,
    getItemKey: (i) => rows[i].key,
    overscan: 12,
    // Room for the "beginning of the channel" line above the first row.
    paddingStart: 48,
  });

  // "Seen": in a DM, the other member has read up to (or past) my newest message.
  const seenId = useMemo(() => {
    if (channel.kind !== 'dm') return null;
    const other = dmPeer(channel);
    const read = other ? receipts[other.id] : undefined;
    if (!read) return null;
    const mine = [...items].reverse().find((m) => m.delivery === 'sent' && m.author_id === chat.me.id);
    return mine && compareIds(read, mine.id) >= 0 ? mine.id : null;
  }, [channel, receipts, items, chat.me.id]);

  // Keep the view where it was: at the bottom if the reader was there, on the same message if
  // older ones were added above it.
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (!el || rows.length === 0) return;
    if (anchor.current) {
      const index = rows.findIndex((r) => r.key === anchor.current!.key);
      const m = virtualizer.measurementsCache[index];
      if (m) el.scrollTop = m.start - anchor.current.offset;
      anchor.current = null;
      return;
    }
    const newestKey = rows[rows.length - 1].key;
    const grew = lastKey.current !== null && lastKey.current !== newestKey;
    lastKey.current = newestKey;
    if (atBottom.current) virtualizer.scrollToIndex(rows.length - 1, { align: 'end' });
    else if (grew) setBehind(true);
  }, [rows, virtualizer]);

  const jumpToPresent = () => {
    atBottom.current = true;
    setBehind(false);
    virtualizer.scrollToIndex(rows.length - 1, { align: 'end' });
  };

  const loadOlder = useCallback(async () => {
    const el = scrollRef.current;
    if (!el || loadingOlder || !list?.hasOlder) return;
    const first = virtualizer.getVirtualItems().find((v) => v.end > el.scrollTop);
    if (first) anchor.current = { key: String(first.key), offset: first.start - el.scrollTop };
    setLoadingOlder(true);
    try {
      await chat.loadOlder(channel.id);
    } finally {
      setLoadingOlder(false);
    }
  }, [chat, channel.id, list?.hasOlder, loadingOlder, virtualizer]);

  const onScroll = () => {
    const el = scrollRef.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
    if (atBottom.current) {
      chat.markRead(channel.id);
      setBehind(false);
    }
    if (el.scrollTop < NEAR_TOP_PX && !list?.historyFailed) void loadOlder();
  };

  // A short first page may not fill the screen: keep loading until it does or history ends.
  useEffect(() => {
    const el = scrollRef.current;
    if (el && list?.hasOlder && !list.historyFailed && el.scrollHeight <= el.clientHeight + NEAR_TOP_PX)
      void loadOlder();
  }, [list, loadOlder]);

  const newest = list ? lastConfirmed(list) : undefined;
  return (
    <>
      <div
        className="messages"
        ref={scrollRef}
        onScroll={onScroll}
        role="log"
        aria-label="Messages"
        aria-busy={!list || loadingOlder}
        tabIndex={0}
        data-newest={newest?.id}
        data-count={items.length}
      >
        <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          <div className="messages-start">
            {isError || list?.historyFailed ? (
              <p className="form-error">
                Could not load earlier messages.{' '}
                <button className="link" onClick={() => void (list ? chat.loadOlder(channel.id) : refetch())}>
                  Try again
                </button>
              </p>
            ) : !list ? (
              <p className="muted">Loading messages…</p>
            ) : list.hasOlder ? (
              <p className="muted">{loadingOlder ? 'Loading older messages…' : ' '}</p>
            ) : (
              <p className="muted">
                This is the beginning of {channel.kind === 'dm' ? 'your conversation' : 'the channel'}.
              </p>
            )}
          </div>
          {virtualizer.getVirtualItems().map((v) => {
            const row = rows[v.index];
            return (
              <div
                key={v.key}
                data-index={v.index}
                ref={virtualizer.measureElement}
                className="vrow"
                style={{ transform: `translateY(${v.start}px)` }}
              >
                {row.kind === 'day' ? (
                  <div className="day-divider" role="separator">
                    <span>{row.label}</span>
                  </div>
                ) : row.kind === 'blocked' ? (
                  <div className="blocked-row" role="note">
                    {row.count} blocked {row.count === 1 ? 'message' : 'messages'} —{' '}
                    <button className="link" onClick={() => setRevealed((r) => new Set(r).add(row.key))}>
                      Show
                    </button>
                  </div>
                ) : (
                  <MessageRow
                    row={row}
                    author={users[row.message.author_id]}
                    mine={row.message.author_id === chat.me.id}
                    seen={row.message.id === seenId}
                    editing={editing === row.message.id}
                    onEdit={onEdit}
                  />
                )}
              </div>
            );
          })}
        </div>
      </div>
      {behind && (
        <button className="jump" onClick={jumpToPresent}>
          New messages below
        </button>
      )}
    </>
  );
}

interface RowProps {
  row: Extract<Row, { kind: 'message' }>;
  author: User | undefined;
  mine: boolean;
  seen: boolean;
  editing: boolean;
  onEdit: (id: string | null) => void;
}

const MessageRow = memo(function MessageRow({ row, author, mine, seen, editing, onEdit }: RowProps) {
  const chat = useChat();
  const m = row.message;
  const name = displayName(author);
  const time = new Date(row.time);
  const timeText = time.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  return (
    <article
      className={`message ${row.head ? 'head' : ''} ${m.delivery}`}
      aria-label={`${name} at ${timeText}`}
      data-message-id={m.delivery === 'sent' ? m.id : undefined}
      data-delivery={m.delivery}
      // Focusable by tap, so a touch screen shows the message's actions (:focus-within).
      tabIndex={-1}
    >
      <div className="gutter">
        {row.head ? (
          <Avatar user={author} size={40} />
        ) : (
          <time className="hover-time" dateTime={time.toISOString()}>
            {timeText}
          </time>
        )}
      </div>
      <div className="body">
        {row.head && (
          <div className="meta">
            <span className="author">{name}</span>
            <time dateTime={time.toISOString()} title={time.toLocaleString()}>
              {timeText}
            </time>
          </div>
        )}
        {editing ? (
          <EditBox message={m} onDone={() => onEdit(null)} />
        ) : (
          <div className="content">
            <RichText text={m.content} />
            {m.edited_at ? (
              <span className="edited" title={new Date(m.edited_at).toLocaleString()}>
                {' '}
                (edited)
              </span>
            ) : null}
          </div>
        )}
        {m.delivery === 'pending' && <span className="sr-only">Sending…</span>}
        {m.delivery === 'failed' && (
          <div className="failed-note" role="alert">
            Not sent.{' '}
            <button className="link" onClick={() => chat.retry(m.channel_id, m.nonce!, m.content)}>
              Retry
            </button>{' '}
            <button className="link" onClick={() => chat.discard(m.channel_id, m.nonce!)}>
              Discard
            </button>
          </div>
        )}
        {seen && (
          <div className="seen" aria-label="Seen">
            Seen
          </div>
        )}
      </div>
      {mine && m.delivery === 'sent' && !editing && (
        <div className="message-actions">
          <button className="small" aria-label="Edit message" onClick={() => onEdit(m.id)}>
            Edit
          </button>
          <button
            className="small danger"
            aria-label="Delete message"
            onClick={() => {
              if (window.confirm('Delete this message?'))
                void chat.remove(m.channel_id, m.id).catch(() => {});
            }}
          >
            Delete
          </button>
        </div>
      )}
    </article>
  );
});

function EditBox({ message, onDone }: { message: ChatMessage; onDone: () => void }) {
  const chat = useChat();
  const [text, setText] = useState(message.content);
  const [error, setError] = useState<string | null>(null);
  const save = async () => {
    if (!text.trim() || text === message.content) return onDone();
    try {
      await chat.edit(message.channel_id, message.id, text);
      onDone();
    } catch (e) {
      setError(e instanceof Error ? e.message : 'Could not save the edit.');
    }
  };
  return (
    <div className="edit-box">
      <textarea
        aria-label="Edit message"
        value={text}
        autoFocus
        rows={Math.min(8, text.split('\n').length)}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') onDone();
          if (e.key === 'Enter' && !e.shiftKey) {
            e.preventDefault();
            void save();
          }
        }}
      />
      <span className="muted small">Escape to cancel, Enter to save</span>
      {error && (
        <span className="field-error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}
