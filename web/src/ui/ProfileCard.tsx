// A person's card, opened by clicking their name or a mention of them: display name, username,
// avatar, bio, status, and the servers we share (those whose members I have loaded that list
// them, and DMs or channels we are both in).
import { useChannels, useChat, usePresence, useUsers } from '../chat/hooks';
import { keys } from '../chat/keys';
import { displayName } from '../chat/store';
import { useGuilds } from '../guilds/hooks';
import type { GuildMemberPage } from '../guilds/store';
import { Avatar, statusLabel } from './Avatar';
import { presenceOf } from './presence';

export function ProfileCard({ userId, onClose }: { userId: string; onClose: () => void }) {
  const chat = useChat();
  const users = useUsers();
  const presence = usePresence();
  const guilds = useGuilds();
  const channels = useChannels();
  const user = users[userId];
  const status = presenceOf(user, presence, chat.me.id);
  const mutualServers = guilds.filter(
    (g) =>
      userId === chat.me.id ||
      (chat.qc.getQueryData<GuildMemberPage | null>(keys.guildMembers(g.id))?.members ?? []).some(
        (m) => m.user.id === userId,
      ),
  );
  const mutualChannels = channels.filter(
    (c) => !c.guild_id && (c.recipients ?? []).some((r) => r.id === userId),
  );
  return (
    <aside className="profile-card" role="dialog" aria-label={`Profile of ${displayName(user)}`}>
      <button className="icon close" aria-label="Close profile" onClick={onClose}>
        ✕
      </button>
      <Avatar user={user} size={72} status={status} />
      <h2>{displayName(user)}</h2>
      <p className="muted">@{user?.username ?? 'unknown'}</p>
      {status && <p className="status">{statusLabel(status)}</p>}
      {user?.bio && <p className="bio">{user.bio}</p>}
      {mutualServers.length > 0 && (
        <section aria-label="Mutual servers">
          <h3>Mutual servers</h3>
          <ul>
            {mutualServers.map((g) => (
              <li key={g.id}>{g.name}</li>
            ))}
          </ul>
        </section>
      )}
      {mutualChannels.length > 0 && (
        <section aria-label="Mutual channels">
          <h3>Mutual channels</h3>
          <ul>
            {mutualChannels.map((c) => (
              <li key={c.id}>{c.name ?? 'Direct message'}</li>
            ))}
          </ul>
        </section>
      )}
    </aside>
  );
}
