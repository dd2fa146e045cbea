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
import { Attachments } from './Attachments';
import { Embeds } from './Embeds';
import { Avatar } from './Avatar';
import { ConfirmDialog } from './Confirm';
import { mentionsUser, withMentionedNames } from '../chat/mentions';
import { useGuild } from '../guilds/hooks';
import { CallNotice, MessageMenu, PinNotice, Reactions, ReplyPreview, usePins } from './conversation';
import type { MentionNames } from './markdown';
import { RichText } from './RichText';
import { buildRows, type Row } from './rows';

const NEAR_BOTTOM_PX = 80;
const NEAR_TOP_PX = 300;

export function MessageList({
  channel,
  editing,
  onEdit,
  onReply,
  moderates,
  jump,
  onJump,
  onUser,
}: {
  channel: Channel;
  editing: string | null;
  onEdit: (id: string | null) => void;
  /** Reply to this message (the composer shows it). */
  onReply: (m: ChatMessage) => void;
  /** Whether I may delete others' messages here (MANAGE_MESSAGES, a group's owner or moderator). */
  moderates: boolean;
  /** A message to bring into view (a reply's original, a pin), once. */
  jump: string | null;
  onJump: (id: string | null) => void;
  onUser: (id: string, at: HTMLElement) => void;
}) {
  const chat = useChat();
  const users = useUsers();
  const guild = useGuild(channel.guild_id);
  const { data: pins } = usePins(channel.id);
  const pinned = useMemo(() => new Set((pins ?? []).map((m) => m.id)), [pins]);
  const myRoles = guild?.member.roles;
  const names = useMemo<MentionNames>(
    () => ({
      user: (id) => (users[id] ? displayName(users[id]) : undefined),
      role: (id) => guild?.roles.find((r) => r.id === id)?.name,
      me: chat.me.id,
    }),
    [users, guild, chat.me.id],
  );
  const [flash, setFlash] = useState<string | null>(null);
  const { data: list, isError, refetch } = useMessages(channel.id);
  const receipts = useReceipts(channel.id);
  const items = useMemo(() => list?.items ?? [], [list]);
  // Messages by people I block collapse into "N blocked messages", each run shown on request.
  const blocked = useBlocked();
  const [revealed, setRevealed] = useState<ReadonlySet<string>>(() => new Set());
  // Where the reader had stopped when they opened the channel: the "new messages" divider stays
  // there while they read (marking read moves the marker at once).
  const opened = useRef<{ channel: string; readUpTo: string | null }>();
  if (opened.current?.channel !== channel.id)
    opened.current = {
      channel: channel.id,
      readUpTo: (channel.unread_count ?? 0) > 0 ? (channel.last_read_id ?? null) : null,
    };
  const readUpTo = opened.current.readUpTo;
  const rows = useMemo(
    () => buildRows(items, Date.now(), (m) => m.author_id in blocked, revealed, readUpTo),
    [items, blocked, revealed, readUpTo],
  );
  const dividerIndex = rows.findIndex((r) => r.kind === 'new');
  const scrollRef = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const lastKey = useRef<string | null>(null);
  // New messages arrived while the reader was scrolled up: offer the way back down.
  const [behind, setBehind] = useState(false);
  // Far up in the history (more than two screens from the newest): offer the way back.
  const [farUp, setFarUp] = useState(false);
  // The first message at or below the top of the view, and how far down it is: kept in place
  // when older messages are put above it.
  const topAnchor = useRef<{ key: string; offset: number } | null>(null);
  const firstKey = useRef<string | null>(null);
  // Whether an older page is being fetched: a ref, read by every handler at once. (A state read
  // from a render's closure could still say "loading" just after a page landed, and a reader
  // already at the top then never got another scroll event to ask again.)
  const fetchingOlder = useRef(false);
  const [loadingOlder, setLoadingOlder] = useState(false);

  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: (i) =>
      rows[i]?.kind === 'day' || rows[i]?.kind === 'new'
        ? 40
        : rows[i] && (rows[i] as { head: boolean }).head
          ? 64
          : 28,
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

  /**
   * Remembers the first message at or below the top of the view. Never a day divider: its key
   * moves to the new top when an older page of the same day lands, and the view then jumped a
   * whole page up.
   */
  const rememberTop = () => {
    const el = scrollRef.current;
    if (!el) return;
    const top = el.scrollTop;
    const measured = virtualizer.measurementsCache;
    let i = virtualizer.getVirtualItemForOffset(top)?.index ?? 0;
    while (i < rows.length && (rows[i].kind === 'day' || (measured[i] && measured[i].end <= top))) i++;
    const m = measured[i];
    topAnchor.current = m && rows[i] ? { key: rows[i].key, offset: m.start - top } : null;
  };

  // Keep the view where it was: on the same message if older ones were added above it, at the
  // bottom if the reader was there.
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (!el || rows.length === 0) return;
    const first = rows.find((r) => r.kind === 'message')?.key ?? null;
    const prepended = firstKey.current !== null && first !== firstKey.current;
    firstKey.current = first;
    const newestKey = rows[rows.length - 1].key;
    const grew = lastKey.current !== null && lastKey.current !== newestKey;
    lastKey.current = newestKey;
    const kept = topAnchor.current;
    const m =
      prepended && kept ? virtualizer.measurementsCache[rows.findIndex((r) => r.key === kept.key)] : null;
    if (m && kept) el.scrollTop = m.start - kept.offset;
    else if (atBottom.current && !list?.hasNewer)
      virtualizer.scrollToIndex(rows.length - 1, { align: 'end' });
    else if (grew) setBehind(true);
    rememberTop();
  }, [rows, virtualizer]); // eslint-disable-line react-hooks/exhaustive-deps

  // Bring a message into view: from older pages when it is near, else the list becomes the window
  // of history around it (`Chat.openAt`).
  useEffect(() => {
    if (!jump) return;
    let cancelled = false;
    void chat.openAt(channel.id, jump).then((found) => {
      if (cancelled) return;
      onJump(null);
      if (!found) return;
      requestAnimationFrame(() => {
        const list = chat.qc.getQueryData<{ items: ChatMessage[] }>(['messages', channel.id]);
        const current = buildRows(list?.items ?? [], Date.now(), (m) => m.author_id in blocked, revealed);
        const index = current.findIndex((r) => r.kind === 'message' && r.message.id === jump);
        if (index < 0) return;
        atBottom.current = false;
        virtualizer.scrollToIndex(index, { align: 'center' });
        setFlash(jump);
        setTimeout(() => setFlash((f) => (f === jump ? null : f)), 2000);
      });
    });
    return () => {
      cancelled = true;
    };
  }, [jump]); // eslint-disable-line react-hooks/exhaustive-deps

  const jumpToPresent = async () => {
    if (list?.hasNewer) await chat.backToPresent(channel.id);
    atBottom.current = true;
    setFarUp(false);
    setBehind(false);
    virtualizer.scrollToIndex(rows.length - 1, { align: 'end' });
  };

  const loadOlder = useCallback(async () => {
    if (fetchingOlder.current || !list?.hasOlder || list.historyFailed) return;
    fetchingOlder.current = true;
    setLoadingOlder(true);
    try {
      await chat.loadOlder(channel.id);
    } finally {
      fetchingOlder.current = false;
      setLoadingOlder(false);
    }
  }, [chat, channel.id, list?.hasOlder, list?.historyFailed]);

  const onScroll = () => {
    const el = scrollRef.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
    setFarUp(el.scrollHeight - el.scrollTop - el.clientHeight > el.clientHeight * 2);
    if (atBottom.current) {
      chat.markRead(channel.id);
      setBehind(false);
    }
    rememberTop();
    if (el.scrollTop < NEAR_TOP_PX) void loadOlder();
    if (list?.hasNewer && el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_TOP_PX) void loadNewer();
  };

  // Below a window opened at an older message: the next newer page, one at a time.
  const fetchingNewer = useRef(false);
  const loadNewer = async () => {
    if (fetchingNewer.current) return;
    fetchingNewer.current = true;
    try {
      await chat.loadNewer(channel.id);
    } finally {
      fetchingNewer.current = false;
    }
  };

  // Whenever a page has landed (or the first one is short), look again rather than wait for a
  // scroll event: a reader who got to the top during the load is at the boundary, where scrolling
  // further up fires none, and would otherwise wait there for good.
  useEffect(() => {
    const el = scrollRef.current;
    if (!el || loadingOlder || !list?.hasOlder || list.historyFailed) return;
    if (el.scrollTop < NEAR_TOP_PX || el.scrollHeight <= el.clientHeight + NEAR_TOP_PX) void loadOlder();
  }, [list, loadingOlder, loadOlder]);

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
                {row.kind === 'new' ? (
                  <div className="new-divider" role="separator" aria-label="New messages">
                    <span>New messages</span>
                  </div>
                ) : row.kind === 'day' ? (
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
                    onReply={onReply}
                    onJump={onJump}
                    onUser={onUser}
                    names={names}
                    mentioned={mentionsUser(row.message, chat.me.id, myRoles ?? [])}
                    moderates={moderates}
                    pinned={pinned.has(row.message.id)}
                    flash={flash === row.message.id}
                  />
                )}
              </div>
            );
          })}
        </div>
      </div>
      {behind && (
        <button className="jump" onClick={() => void jumpToPresent()}>
          New messages below
        </button>
      )}
      {dividerIndex >= 0 && (virtualizer.getVirtualItems()[0]?.index ?? 0) > dividerIndex && (
        <button
          className="jump jump-unread"
          onClick={() => {
            atBottom.current = false;
            virtualizer.scrollToIndex(dividerIndex, { align: 'start' });
          }}
        >
          Jump to unread
        </button>
      )}
      {!behind && (farUp || list?.hasNewer) && (
        <button className="jump jump-present" onClick={() => void jumpToPresent()}>
          Jump to present
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
  onReply: (m: ChatMessage) => void;
  onJump: (id: string) => void;
  onUser: (id: string, at: HTMLElement) => void;
  names: MentionNames;
  mentioned: boolean;
  moderates: boolean;
  pinned: boolean;
  flash: boolean;
}

const MessageRow = memo(function MessageRow({
  row,
  author,
  mine,
  seen,
  editing,
  onEdit,
  onReply,
  onJump,
  onUser,
  names,
  mentioned,
  moderates,
  pinned,
  flash,
}: RowProps) {
  const chat = useChat();
  const [menu, setMenu] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const m = row.message;
  // People the client has not loaded are named as the message names them.
  const rowNames = useMemo(() => withMentionedNames(names, m), [names, m]);
  // Shift held: delete at once, without asking (as on Discord).
  const askDelete = (now: boolean) => {
    if (now) void chat.remove(m.channel_id, m.id).catch(() => {});
    else setDeleting(true);
  };
  const name = displayName(author);
  const time = new Date(row.time);
  const timeText = time.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  return (
    <>
      <article
        className={`message ${row.head || m.message_reference ? 'head' : ''} ${m.delivery} ${mentioned ? 'mentioned' : ''} ${flash ? 'flash' : ''}`}
        data-mentioned={mentioned || undefined}
        onContextMenu={(e) => {
          if (m.delivery !== 'sent') return;
          e.preventDefault();
          setMenu(true);
        }}
        aria-label={`${name} at ${timeText}`}
        data-message-id={m.delivery === 'sent' ? m.id : undefined}
        data-delivery={m.delivery}
        // Focusable by tap, so a touch screen shows the message's actions (:focus-within).
        tabIndex={-1}
      >
        {m.type === 6 || m.type === 3 ? (
          <div className="body">
            {m.type === 6 ? (
              <PinNotice message={m} author={author} onJump={onJump} />
            ) : (
              <CallNotice message={m} author={author} me={chat.me.id} />
            )}
          </div>
        ) : (
          <>
            <div className="gutter">
              {row.head || m.message_reference ? (
                <Avatar user={author} size={40} />
              ) : (
                <time className="hover-time" dateTime={time.toISOString()}>
                  {timeText}
                </time>
              )}
            </div>
            <div className="body">
              {m.message_reference && <ReplyPreview message={m} onJump={onJump} />}
              {(row.head || m.message_reference) && (
                <div className="meta">
                  <button
                    className="author link-plain"
                    onClick={(e) => author && onUser(author.id, e.currentTarget)}
                  >
                    {name}
                  </button>
                  <time dateTime={time.toISOString()} title={time.toLocaleString()}>
                    {timeText}
                  </time>
                </div>
              )}
              {editing ? (
                <EditBox message={m} onDone={() => onEdit(null)} />
              ) : (
                <div className="content">
                  <RichText text={m.content} names={rowNames} onUser={onUser} />
                  {m.edited_at ? (
                    <span className="edited" title={new Date(m.edited_at).toLocaleString()}>
                      {' '}
                      (edited)
                    </span>
                  ) : null}
                </div>
              )}
              {m.attachments?.length ? <Attachments files={m.attachments} /> : null}
              {m.embeds?.length ? (
                <Embeds
                  embeds={m.embeds}
                  onRemove={
                    (mine || moderates) && m.delivery === 'sent'
                      ? () => void chat.suppressEmbeds(m.channel_id, m.id)
                      : undefined
                  }
                />
              ) : null}
              <Reactions message={m} />
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
          </>
        )}
        {m.delivery === 'sent' && !editing && (
          <div className="message-actions">
            <button
              className="small"
              aria-label="More actions"
              aria-haspopup="menu"
              onClick={() => setMenu((o) => !o)}
            >
              …
            </button>
            {mine && (m.type ?? 0) === 0 && (
              <button className="small" aria-label="Edit message" onClick={() => onEdit(m.id)}>
                Edit
              </button>
            )}
            {(mine || moderates) && (
              <button
                className="small danger"
                aria-label="Delete message"
                title="Delete (hold Shift to skip the question)"
                onClick={(e) => askDelete(e.shiftKey)}
              >
                Delete
              </button>
            )}
          </div>
        )}
        {menu && (
          <MessageMenu
            message={m}
            mine={mine}
            moderates={moderates}
            pinned={pinned}
            onReply={() => onReply(m)}
            onEdit={() => onEdit(m.id)}
            onDelete={askDelete}
            onClose={() => setMenu(false)}
          />
        )}
      </article>
      {/* Beside the message, not in it: what finds a message must not find its question. */}
      {deleting && (
        <ConfirmDialog
          title="Delete this message?"
          confirm="Delete message"
          onConfirm={() => chat.remove(m.channel_id, m.id)}
          onClose={() => setDeleting(false)}
        >
          <p>It is deleted for everyone in the channel. This cannot be undone.</p>
          {m.content && (
            <blockquote className="confirm-quote">
              <strong>{name}</strong> {m.content}
            </blockquote>
          )}
          <p className="muted small">Hold Shift while clicking Delete to delete without this question.</p>
        </ConfirmDialog>
      )}
    </>
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
