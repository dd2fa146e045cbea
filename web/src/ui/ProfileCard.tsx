// A person's card, opened by clicking their name or avatar (in messages and member lists) or a
// mention of them: display name, username, avatar, bio, status, and the servers and group
// channels we share, as the server says (`GET /users/{id}/profile`: only places I am in).
import { useQuery } from '@tanstack/react-query';
import { call } from '../api/rest';
import type { UserProfile } from '../api/types';
import { useChannels, useChat, usePresence, useUsers } from '../chat/hooks';
import { keys } from '../chat/keys';
import { displayName } from '../chat/store';
import { useGuilds } from '../guilds/hooks';
import { Avatar, statusLabel } from './Avatar';
import { presenceOf } from './presence';

export function useProfile(userId: string) {
  return useQuery({
    queryKey: keys.profile(userId),
    queryFn: () => call<UserProfile>(`/api/v1/users/${userId}/profile`),
    // Fresh each time a card opens: servers are joined and left.
    staleTime: 0,
    gcTime: 60_000,
  });
}

export function ProfileCard({ userId, onClose }: { userId: string; onClose: () => void }) {
  const chat = useChat();
  const users = useUsers();
  const presence = usePresence();
  const guilds = useGuilds();
  const channels = useChannels();
  const profile = useProfile(userId);
  // What the client already knows shows at once; the card's answer fills in the rest.
  const user = users[userId] ?? profile.data?.user;
  const status = presenceOf(user, presence, chat.me.id);
  const mutualServers = (profile.data?.mutual_guilds ?? []).map((m) => ({
    id: m.id,
    name: guilds.find((g) => g.id === m.id)?.name ?? 'A server',
    nick: m.nick,
  }));
  const mutualChannels = (profile.data?.mutual_channels ?? []).map((m) => ({
    id: m.id,
    name: channels.find((c) => c.id === m.id)?.name ?? m.name ?? 'A channel',
  }));
  const dm = channels.find((c) => c.kind === 'dm' && (c.recipients ?? []).some((r) => r.id === userId));
  const self = userId === chat.me.id;
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
      {profile.isError && <p className="muted small">Could not load what you share.</p>}
      {!self && mutualServers.length > 0 && (
        <section aria-label="Mutual servers">
          <h3>Mutual servers — {mutualServers.length}</h3>
          <ul>
            {mutualServers.map((g) => (
              <li key={g.id}>
                {g.name}
                {g.nick && <span className="muted small"> as {g.nick}</span>}
              </li>
            ))}
          </ul>
        </section>
      )}
      {!self && (mutualChannels.length > 0 || dm) && (
        <section aria-label="Mutual channels">
          <h3>Mutual channels — {mutualChannels.length + (dm ? 1 : 0)}</h3>
          <ul>
            {dm && <li>Direct message</li>}
            {mutualChannels.map((c) => (
              <li key={c.id}>#{c.name}</li>
            ))}
          </ul>
        </section>
      )}
    </aside>
  );
}
