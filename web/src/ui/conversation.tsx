// What a message shows beside its text, and what one can do with it: a reply's preview (jump to
// the original), reactions (click to add or take back), the system message of a pin, the
// message menu (reply, react, pin, edit, delete), the emoji picker with shortcode search and the
// channel's pins.
import { useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import type { Channel, User } from '../api/types';
import { useChat, useUsers } from '../chat/hooks';
import { keys } from '../chat/keys';
import type { ChatMessage } from '../chat/messageList';
import { displayName } from '../chat/store';
import { loadEmoji, searchEmoji, type EmojiEntry } from './emoji';
import { RichText } from './RichText';
import { callLength, missedBy } from '../voice/calls';

export const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢'];

/** Above a reply: who it answers and the start of what they said; a click jumps there. */
export function ReplyPreview({ message, onJump }: { message: ChatMessage; onJump: (id: string) => void }) {
  const users = useUsers();
  const ref = message.message_reference;
  if (!ref) return null;
  const original = message.referenced_message;
  if (!original)
    return (
      <div className="reply-preview deleted" aria-label="Reply to a deleted message">
        ↱ Original message was deleted
      </div>
    );
  return (
    <button
      className="reply-preview"
      aria-label={`Reply to ${displayName(users[original.author_id])}: jump to the original`}
      onClick={() => onJump(original.id)}
    >
      ↱ <span className="reply-author">@{displayName(users[original.author_id])}</span>{' '}
      <span className="reply-text">{original.content}</span>
    </button>
  );
}

/** "ann pinned a message." (Discord's message type 6). */
export function PinNotice({
  message,
  author,
  onJump,
}: {
  message: ChatMessage;
  author: User | undefined;
  onJump: (id: string) => void;
}) {
  const target = message.message_reference?.message_id;
  return (
    <div className="system-message" role="note">
      📌 <strong>{displayName(author)}</strong> pinned{' '}
      {target ? (
        <button className="link" onClick={() => onJump(target)}>
          a message
        </button>
      ) : (
        'a message'
      )}{' '}
      to this channel.
    </div>
  );
}

/**
 * A call's system message (Discord's type 3): "Missed call from ann" when nobody answered (or,
 * to someone who did not join, when others did), else "ann started a call that lasted 3 minutes".
 */
export function CallNotice({
  message,
  author,
  me,
}: {
  message: ChatMessage;
  author: User | undefined;
  me: string;
}) {
  const call = message.call;
  const name = displayName(author);
  if (!call) return null;
  const missed = missedBy(call, message.author_id, me);
  return (
    <div className="system-message" role="note">
      📞{' '}
      {missed ? (
        <>
          Missed call from <strong>{name}</strong>
        </>
      ) : (
        <>
          <strong>{name}</strong> started a call that lasted{' '}
          {callLength(call.ended_timestamp - call.started_timestamp)}
        </>
      )}
      .
    </div>
  );
}

/** A message's reactions: each emoji and its count, mine highlighted; a click adds or takes back. */
export function Reactions({ message }: { message: ChatMessage }) {
  const chat = useChat();
  const reactions = message.reactions ?? [];
  if (reactions.length === 0) return null;
  return (
    <div className="reactions" role="group" aria-label="Reactions">
      {reactions.map((r) => (
        <button
          key={r.emoji.name}
          className={`reaction ${r.me ? 'me' : ''}`}
          aria-pressed={r.me}
          aria-label={`${r.emoji.name} ${r.count}`}
          onClick={() => void chat.react(message.channel_id, message.id, r.emoji.name, !r.me).catch(() => {})}
        >
          {r.emoji.name} <span className="count">{r.count}</span>
        </button>
      ))}
    </div>
  );
}

/** Emoji by shortcode: a search box over the Unicode list, loaded on first open. */
export function EmojiPicker({ onPick, onClose }: { onPick: (emoji: string) => void; onClose: () => void }) {
  const [all, setAll] = useState<EmojiEntry[] | null>(null);
  const [query, setQuery] = useState('');
  useEffect(() => {
    void loadEmoji().then(setAll);
  }, []);
  const found = all ? searchEmoji(all, query.replace(/:/g, ''), 48) : [];
  return (
    <div className="emoji-picker" role="dialog" aria-label="Emoji picker">
      <input
        autoFocus
        aria-label="Search emoji"
        placeholder=":shortcode"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') onClose();
          if (e.key === 'Enter' && found[0]) onPick(found[0].unicode);
        }}
      />
      <div className="emoji-grid">
        {!all && <span className="muted">Loading…</span>}
        {found.map((e) => (
          <button
            key={e.unicode}
            title={`:${e.names[0]}:`}
            aria-label={`:${e.names[0]}:`}
            onClick={() => onPick(e.unicode)}
          >
            {e.unicode}
          </button>
        ))}
      </div>
    </div>
  );
}

/** The message menu ("…" on hover, or right click): reply, react, pin, edit, delete. */
export function MessageMenu({
  message,
  mine,
  moderates,
  pinned,
  onReply,
  onEdit,
  onDelete,
  onClose,
}: {
  message: ChatMessage;
  mine: boolean;
  moderates: boolean;
  pinned: boolean;
  onReply: () => void;
  onEdit: () => void;
  /** Asks first, unless `now` (Shift was held). */
  onDelete: (now: boolean) => void;
  onClose: () => void;
}) {
  const chat = useChat();
  const [picking, setPicking] = useState(false);
  const system = (message.type ?? 0) !== 0;
  const react = (emoji: string) => {
    const had = message.reactions?.find((r) => r.emoji.name === emoji)?.me ?? false;
    void chat.react(message.channel_id, message.id, emoji, !had).catch(() => {});
    onClose();
  };
  if (picking) return <EmojiPicker onPick={react} onClose={onClose} />;
  return (
    <div
      className="message-menu"
      role="menu"
      aria-label="Message actions"
      onKeyDown={(e) => e.key === 'Escape' && onClose()}
    >
      <div className="quick-reactions">
        {QUICK_REACTIONS.map((e) => (
          <button key={e} role="menuitem" aria-label={`React ${e}`} onClick={() => react(e)}>
            {e}
          </button>
        ))}
        <button role="menuitem" aria-label="More reactions" onClick={() => setPicking(true)}>
          ＋
        </button>
      </div>
      {!system && (
        <button role="menuitem" onClick={() => (onReply(), onClose())}>
          Reply
        </button>
      )}
      {!system && (
        <button
          role="menuitem"
          onClick={() => {
            void chat
              .pin(message.channel_id, message.id, !pinned)
              .catch((e: Error) => window.alert(e.message));
            onClose();
          }}
        >
          {pinned ? 'Unpin message' : 'Pin message'}
        </button>
      )}
      {mine && !system && (
        <button role="menuitem" onClick={() => (onEdit(), onClose())}>
          Edit message
        </button>
      )}
      {(mine || moderates) && (
        <button
          role="menuitem"
          className="danger"
          onClick={(e) => {
            onClose();
            onDelete(e.shiftKey);
          }}
        >
          Delete message
        </button>
      )}
    </div>
  );
}

/** The channel's pinned messages, kept current by CHANNEL_PINS_UPDATE. */
export function usePins(channelId: string, enabled = true) {
  const chat = useChat();
  return useQuery({
    queryKey: keys.pins(channelId),
    queryFn: () => chat.loadPins(channelId),
    staleTime: Infinity,
    enabled,
  });
}

export function PinsPanel({
  channel,
  onJump,
  onClose,
}: {
  channel: Channel;
  onJump: (id: string) => void;
  onClose: () => void;
}) {
  const users = useUsers();
  const { data, isError } = usePins(channel.id);
  return (
    <aside className="pins-panel" role="dialog" aria-label="Pinned messages">
      <header>
        <h2>Pinned messages</h2>
        <button className="icon" aria-label="Close pins" onClick={onClose}>
          ✕
        </button>
      </header>
      {isError && <p className="form-error">Could not load the pins.</p>}
      {data && data.length === 0 && <p className="muted">No pinned messages yet.</p>}
      <ul>
        {data?.map((m) => (
          <li key={m.id} className="pinned">
            <div className="meta">
              <span className="author">{displayName(users[m.author_id])}</span>
              <button className="link" onClick={() => onJump(m.id)}>
                Jump
              </button>
            </div>
            <RichText text={m.content} />
          </li>
        ))}
      </ul>
    </aside>
  );
}

/** A red badge: how many unread messages mention me (a channel's, or a server's summed). */
export function MentionBadge({ count }: { count: number }) {
  if (count <= 0) return null;
  return (
    <span className="badge mention-badge" aria-label={`${count >= 100 ? '100 or more' : count} mentions`}>
      {count >= 100 ? '99+' : count}
    </span>
  );
}
