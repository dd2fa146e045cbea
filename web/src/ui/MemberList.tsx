import type { Channel } from '../api/types';
import { useChat, usePresence } from '../chat/hooks';
import { displayName } from '../chat/store';
import { Avatar, statusLabel } from './Avatar';
import { presenceOf } from './presence';

export function MemberList({ channel }: { channel: Channel }) {
  const chat = useChat();
  const presence = usePresence();
  const members = channel.members
    .map((m) => ({ ...m, status: presenceOf(m.user, presence, chat.me.id) }))
    .sort((a, b) => Number(a.status === 'offline') - Number(b.status === 'offline'));
  return (
    <aside className="members" aria-label="Members">
      <h2>Members — {members.length}</h2>
      <ul>
        {members.map((m) => (
          <li key={m.user.id} className={m.status === 'offline' ? 'offline' : ''} data-user={m.user.username}>
            <Avatar user={m.user} size={32} status={m.status} />
            <span className="member-name">
              {displayName(m.user)}
              {m.status && <span className="sr-only">, {statusLabel(m.status)}</span>}
            </span>
            {m.role !== 'member' && <span className="role">{m.role}</span>}
          </li>
        ))}
      </ul>
    </aside>
  );
}
