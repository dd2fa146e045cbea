import { useEffect, useState } from 'react';
import type { Channel, Member, User } from '../api/types';
import { useBlocked, useChat, useMembers, usePresence } from '../chat/hooks';
import { displayName, type Chat } from '../chat/store';
import { Avatar, statusLabel } from './Avatar';
import { useConfirm, type Confirmation } from './Confirm';
import { errorText } from './Modal';
import { presenceOf } from './presence';

/** What I may do to `member` of a group channel where my role is `mine` (docs/API.md's table). */
export function groupPowers(mine: Member['role'] | null | undefined, member: Member, me: string) {
  const other = member.user.id !== me && member.role !== 'owner';
  return {
    /** Appoint or demote a moderator: the owner only. */
    moderators: other && mine === 'owner',
    /** Remove: the owner removes anyone else; a moderator, plain members. */
    remove: other && (mine === 'owner' || (mine === 'moderator' && member.role === 'member')),
  };
}

/** Removing `user` from a group channel, as the member menu and the channel's settings ask it. */
export function removeFromGroup(chat: Chat, channel: Channel, user: User): Confirmation {
  const name = displayName(user);
  return {
    title: `Remove ${name}?`,
    confirm: `Remove ${name}`,
    onConfirm: () => chat.removeMember(channel.id, user),
    children: (
      <p>
        {name} will no longer see #{channel.name} or its messages. They are told they were removed, and can
        come back only if someone adds them again.
      </p>
    ),
  };
}

/** Leaving a group channel: what happens to it depends on who leaves (docs/API.md, "leave"). */
export function leaveGroup(chat: Chat, channel: Channel): Confirmation {
  const last = (channel.member_count ?? 0) <= 1;
  return {
    title: `Leave #${channel.name}?`,
    confirm: 'Leave channel',
    onConfirm: () => chat.leaveChannel(channel.id),
    children: (
      <p>
        You will no longer see #{channel.name} or its messages, and can come back only if someone adds you
        again.
        {last
          ? ' You are its last member, so it is deleted with all its messages.'
          : channel.role === 'owner'
            ? ' You own it: ownership passes to its longest-standing moderator, or else member.'
            : ''}
      </p>
    ),
  };
}

/**
 * The members of the open channel: loaded when it opens, a page at a time (a channel may have
 * thousands), online first. Each other member has a menu: block or unblock them, and for the
 * owner and moderators, appoint or demote a moderator and remove them (after confirming).
 * Clicking a name or avatar opens their profile card.
 */
export function MemberList({ channel, onUser }: { channel: Channel; onUser?: (id: string) => void }) {
  const chat = useChat();
  const presence = usePresence();
  const page = useMembers(channel.id);
  const confirm = useConfirm();
  useEffect(() => {
    void chat.loadMembers(channel.id);
  }, [chat, channel.id]);
  const members = (page?.members ?? [])
    .map((m) => ({ ...m, status: presenceOf(m.user, presence, chat.me.id) }))
    .sort((a, b) => Number(a.status === 'offline') - Number(b.status === 'offline'));
  return (
    <aside className="members" aria-label="Members">
      <h2>Members — {channel.member_count}</h2>
      {!page && <p className="muted small pad">Loading members…</p>}
      <ul>
        {members.map((m) => (
          <MemberRow
            key={m.user.id}
            channel={channel}
            member={m}
            status={m.status}
            onUser={onUser}
            onRemove={() => confirm.ask(removeFromGroup(chat, channel, m.user))}
          />
        ))}
      </ul>
      {page && !page.complete && (
        <button className="link pad" onClick={() => void chat.loadMembers(channel.id, true)}>
          Show more members
        </button>
      )}
      {confirm.dialog}
    </aside>
  );
}

function MemberRow({
  channel,
  member,
  status,
  onUser,
  onRemove,
}: {
  channel: Channel;
  member: Member;
  status: ReturnType<typeof presenceOf>;
  onUser?: (id: string) => void;
  onRemove: () => void;
}) {
  const chat = useChat();
  const blocked = useBlocked();
  const [menu, setMenu] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const user = member.user;
  const isBlocked = user.id in blocked;
  const powers = groupPowers(channel.role, member, chat.me.id);
  const name = displayName(user);
  const act = (fn: () => Promise<void>) => {
    setMenu(false);
    setError(null);
    fn().catch((e: unknown) => setError(`Could not change that: ${errorText(e)}`));
  };
  return (
    <li
      className={status === 'offline' ? 'offline' : ''}
      data-user={user.username}
      onContextMenu={(e) => {
        if (user.id === chat.me.id) return;
        e.preventDefault();
        setMenu(true);
      }}
    >
      <button className="member-who" onClick={() => onUser?.(user.id)}>
        <Avatar user={user} size={32} status={status} />
        <span className="member-name">
          {name}
          {status && <span className="sr-only">, {statusLabel(status)}</span>}
          {isBlocked && <span className="muted small"> (blocked)</span>}
        </span>
      </button>
      {member.role !== 'member' && <span className="role">{member.role}</span>}
      {user.id !== chat.me.id && (
        <span className="member-menu">
          <button
            className="icon small"
            aria-label={`Options for ${name}`}
            aria-haspopup="menu"
            aria-expanded={menu}
            onClick={() => setMenu((o) => !o)}
          >
            ⋯
          </button>
          {menu && (
            <span
              role="menu"
              aria-label={`Options for ${name}`}
              className="menu"
              onKeyDown={(e) => e.key === 'Escape' && setMenu(false)}
            >
              {powers.moderators &&
                (member.role === 'moderator' ? (
                  <button
                    role="menuitem"
                    autoFocus
                    onClick={() => act(() => chat.setModerator(channel.id, user, false))}
                  >
                    Remove moderator
                  </button>
                ) : (
                  <button
                    role="menuitem"
                    autoFocus
                    onClick={() => act(() => chat.setModerator(channel.id, user, true))}
                  >
                    Make moderator
                  </button>
                ))}
              {powers.remove && (
                <button
                  role="menuitem"
                  className="danger"
                  onClick={() => {
                    setMenu(false);
                    onRemove();
                  }}
                >
                  Remove from channel
                </button>
              )}
              {isBlocked ? (
                <button
                  role="menuitem"
                  autoFocus={!powers.moderators}
                  onClick={() => act(() => chat.unblock(user.id))}
                >
                  Unblock
                </button>
              ) : (
                <button
                  role="menuitem"
                  className="danger"
                  autoFocus={!powers.moderators}
                  onClick={() => act(() => chat.block(user))}
                >
                  Block
                </button>
              )}
            </span>
          )}
        </span>
      )}
      {error && (
        <span className="field-error" role="alert">
          {error}
        </span>
      )}
    </li>
  );
}
