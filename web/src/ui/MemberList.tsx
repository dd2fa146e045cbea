import { useEffect, useState } from 'react';
import type { Channel, Member } from '../api/types';
import { useBlocked, useChat, useMembers, usePresence } from '../chat/hooks';
import { displayName } from '../chat/store';
import { Avatar, statusLabel } from './Avatar';
import { presenceOf } from './presence';

/**
 * The members of the open channel: loaded when it opens, a page at a time (a channel may have
 * thousands), online first. Each other member has a menu to block or unblock them.
 */
export function MemberList({ channel }: { channel: Channel }) {
  const chat = useChat();
  const presence = usePresence();
  const page = useMembers(channel.id);
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
          <MemberRow key={m.user.id} member={m} status={m.status} />
        ))}
      </ul>
      {page && !page.complete && (
        <button className="link pad" onClick={() => void chat.loadMembers(channel.id, true)}>
          Show more members
        </button>
      )}
    </aside>
  );
}

function MemberRow({ member, status }: { member: Member; status: ReturnType<typeof presenceOf> }) {
  const chat = useChat();
  const blocked = useBlocked();
  const [menu, setMenu] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const user = member.user;
  const isBlocked = user.id in blocked;
  const act = (fn: () => Promise<void>) => {
    setMenu(false);
    setError(null);
    fn().catch(() => setError('Could not change that; try again.'));
  };
  return (
    <li className={status === 'offline' ? 'offline' : ''} data-user={user.username}>
      <Avatar user={user} size={32} status={status} />
      <span className="member-name">
        {displayName(user)}
        {status && <span className="sr-only">, {statusLabel(status)}</span>}
        {isBlocked && <span className="muted small"> (blocked)</span>}
      </span>
      {member.role !== 'member' && <span className="role">{member.role}</span>}
      {user.id !== chat.me.id && (
        <span className="member-menu">
          <button
            className="icon small"
            aria-label={`Options for ${displayName(user)}`}
            aria-haspopup="menu"
            aria-expanded={menu}
            onClick={() => setMenu((o) => !o)}
          >
            ⋯
          </button>
          {menu && (
            <span role="menu" className="menu" onKeyDown={(e) => e.key === 'Escape' && setMenu(false)}>
              {isBlocked ? (
                <button role="menuitem" autoFocus onClick={() => act(() => chat.unblock(user.id))}>
                  Unblock
                </button>
              ) : (
                <button
                  role="menuitem"
                  className="danger"
                  autoFocus
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
