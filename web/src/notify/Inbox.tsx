// The "@" inbox (Discord's recent mentions): my mentions and DMs that still need me, across
// servers, from notify. An entry leaves once I have read its channel past it on any device (the
// entry's `read`, and live, my read marker in the channel, which MESSAGE_ACK moves from any
// device), when its message is deleted, or when I dismiss it. Clicking one opens the channel at
// the message.
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import type { MentionEntry } from '../api/types';
import { useChannels, useChat, useUsers } from '../chat/hooks';
import { channelTitle, displayName } from '../chat/store';
import { useGuilds } from '../guilds/hooks';
import { Avatar } from '../ui/Avatar';
import { errorText, Modal } from '../ui/Modal';
import { openMessage } from '../ui/Shell';
import { previewText, stillUnread } from './inbox';
import { notifyKeys } from './store';

const WHY: Record<MentionEntry['reason'], string> = {
  mention: 'mentioned you',
  role_mention: 'mentioned your role',
  everyone: 'mentioned everyone',
  direct: 'messaged you',
  all_messages: 'wrote',
};

export function InboxButton() {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button
        className="rail-item inbox"
        aria-label="Mentions inbox"
        title="Mentions inbox"
        onClick={() => setOpen(true)}
      >
        <span aria-hidden="true">@</span>
      </button>
      {open && <InboxDialog onClose={() => setOpen(false)} />}
    </>
  );
}

function InboxDialog({ onClose }: { onClose: () => void }) {
  const chat = useChat();
  const channels = useChannels();
  const guilds = useGuilds();
  const users = useUsers();
  const inbox = useQuery({
    queryKey: notifyKeys.inbox,
    queryFn: () => chat.notifications.loadInbox(),
    staleTime: 0,
    refetchOnMount: 'always',
    // notify writes an entry a moment after the message arrives: look again while open, even
    // in a tab in the background (polling otherwise pauses there, and the list opened at the
    // moment a mention arrived would stay without it until the tab is shown again).
    refetchInterval: 10_000,
    refetchIntervalInBackground: true,
  });
  const [error, setError] = useState<string | null>(null);
  const byId = new Map(channels.map((c) => [c.id, c]));
  const entries = (inbox.data ?? []).filter((e) => stillUnread(e, byId.get(e.channel_id)));

  return (
    <Modal title="Recent mentions" onClose={onClose}>
      {inbox.isPending && <p className="muted">Loading…</p>}
      {inbox.isError && (
        <p className="form-error" role="alert">
          {errorText(inbox.error)}
        </p>
      )}
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {inbox.isSuccess && entries.length === 0 && (
        <p className="muted" role="status">
          Nothing needs you. Mentions and direct messages you have not read show here.
        </p>
      )}
      <ul className="inbox-list" aria-label="Mentions">
        {entries.map((e) => {
          const c = byId.get(e.channel_id);
          const guild = e.guild_id ? guilds.find((g) => g.id === e.guild_id) : undefined;
          const author = users[e.author_id];
          const where = c ? (c.kind === 'dm' ? 'Direct message' : `#${channelTitle(c)}`) : 'a channel';
          return (
            <li key={e.id} className="inbox-entry" data-message-id={e.id}>
              <button
                className="inbox-open"
                onClick={() => {
                  onClose();
                  openMessage(e.channel_id, e.id);
                }}
              >
                <Avatar user={author} size={32} />
                <span className="inbox-text">
                  <span className="inbox-head">
                    <strong>{displayName(author)}</strong>{' '}
                    <span className="muted small">{WHY[e.reason]}</span>
                  </span>
                  <span className="inbox-where muted small">
                    {where}
                    {guild ? ` · ${guild.name}` : ''}
                  </span>
                  <span className="inbox-preview">
                    {previewText(e.content, (id) => users[id]?.username) || '(a file)'}
                  </span>
                </span>
              </button>
              <button
                className="icon small"
                aria-label={`Dismiss the mention from ${displayName(author)}`}
                title="Dismiss"
                onClick={() => chat.notifications.dismiss(e.id).catch((x) => setError(errorText(x)))}
              >
                ✕
              </button>
            </li>
          );
        })}
      </ul>
    </Modal>
  );
}
