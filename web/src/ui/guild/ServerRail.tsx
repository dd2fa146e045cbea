import { useState, type FormEvent } from 'react';
import { useChannels, useChat } from '../../chat/hooks';
import { useGuilds } from '../../guilds/hooks';
import type { GuildState } from '../../guilds/store';
import { useAction } from '../dialogs';
import { ChatIcon, PlusIcon } from '../icons';
import { Modal } from '../Modal';
import { navigate, navigateGuild } from '../Shell';
import { MentionBadge } from '../conversation';
import { InboxButton } from '../../notify/Inbox';
import { useMuted } from '../../notify/hooks';

/** A server's icon: its image, or its initials (as Discord draws one without). */
export function GuildIcon({ guild, size = 48 }: { guild: Pick<GuildState, 'name' | 'icon'>; size?: number }) {
  const safe = guild.icon && /^https?:\/\//i.test(guild.icon) ? guild.icon : null;
  const initials = guild.name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 3)
    .map((w) => [...w][0])
    .join('');
  return (
    <span className="guild-icon" style={{ width: size, height: size }} aria-hidden="true">
      {safe ? <img src={safe} alt="" width={size} height={size} referrerPolicy="no-referrer" /> : initials}
    </span>
  );
}

/**
 * The rail at the far left, as Discord's: "Direct messages" (home: group channels and DMs), each
 * server, and a button to create or join one.
 */
export function ServerRail({ activeGuildId }: { activeGuildId: string | null }) {
  const guilds = useGuilds();
  const channels = useChannels();
  const [adding, setAdding] = useState(false);
  const muted = useMuted();
  const unread = (guildId: string | null) =>
    channels.some((c) => (guildId ? c.guild_id === guildId : !c.guild_id) && (c.unread_count ?? 0) > 0);
  // A server's mention badge: its channels' counts summed (the DMs' and groups' on "home").
  const mentions = (guildId: string | null) =>
    channels
      .filter((c) => (guildId ? c.guild_id === guildId : !c.guild_id))
      .reduce((sum, c) => sum + (c.mention_count ?? 0), 0);
  return (
    <nav className="rail" aria-label="Servers">
      <ul>
        <li>
          <InboxButton />
        </li>
        <li className={activeGuildId === null ? 'active' : ''}>
          <a
            href="#/"
            className={`rail-item home ${unread(null) ? 'unread' : ''}`}
            aria-current={activeGuildId === null ? 'page' : undefined}
            aria-label="Direct messages"
            title="Direct messages"
          >
            <ChatIcon />
            <MentionBadge count={mentions(null)} />
          </a>
        </li>
        {guilds.map((g) => (
          <li key={g.id} className={g.id === activeGuildId ? 'active' : ''}>
            <a
              href={`#/g/${g.id}`}
              className={`rail-item ${unread(g.id) ? 'unread' : ''} ${muted.guild(g.id) ? 'is-muted' : ''}`}
              aria-current={g.id === activeGuildId ? 'page' : undefined}
              aria-label={muted.guild(g.id) ? `${g.name} (muted)` : g.name}
              title={g.name}
              data-guild-id={g.id}
            >
              <GuildIcon guild={g} />
              <MentionBadge count={mentions(g.id)} />
            </a>
          </li>
        ))}
        <li>
          <button
            className="rail-item add"
            aria-label="Add a server"
            title="Add a server"
            onClick={() => setAdding(true)}
          >
            <PlusIcon />
          </button>
        </li>
      </ul>
      {adding && <AddServerDialog onClose={() => setAdding(false)} />}
    </nav>
  );
}

/** The code of an invite link (`…/invite/aB3dE5gH9k`) or a bare code. */
export function inviteCode(text: string): string | null {
  const m = /(?:\/invite\/)?([A-Za-z0-9]{4,32})\/?$/.exec(text.trim());
  return m ? m[1] : null;
}

function AddServerDialog({ onClose }: { onClose: () => void }) {
  const chat = useChat();
  const [name, setName] = useState('');
  const [link, setLink] = useState('');
  const create = useAction();
  const join = useAction();
  const onCreate = (e: FormEvent) => {
    e.preventDefault();
    void create.run(async () => {
      const g = await chat.guilds.create(name.trim());
      onClose();
      const first = g.channels.find((c) => c.kind === 'text');
      if (first) navigate(first.id);
      else navigateGuild(g.id);
    });
  };
  const onJoin = (e: FormEvent) => {
    e.preventDefault();
    const code = inviteCode(link);
    if (!code) return;
    onClose();
    window.history.pushState(null, '', `/invite/${code}`);
    window.dispatchEvent(new PopStateEvent('popstate'));
  };
  return (
    <Modal title="Add a server" onClose={onClose}>
      <form className="stack" onSubmit={onCreate}>
        <h3>Create your own</h3>
        <label>
          Server name
          <input
            name="server-name"
            required
            minLength={2}
            maxLength={100}
            value={name}
            onChange={(e) => setName(e.target.value)}
            autoFocus
          />
        </label>
        {create.error}
        <button className="primary" type="submit" disabled={create.busy}>
          Create server
        </button>
      </form>
      <form className="stack top-gap" onSubmit={onJoin}>
        <h3>Join one</h3>
        <label>
          Invite link
          <input
            name="invite-link"
            required
            placeholder="https://…/invite/aB3dE5gH9k"
            value={link}
            onChange={(e) => setLink(e.target.value)}
            aria-invalid={link !== '' && !inviteCode(link)}
          />
        </label>
        {join.error}
        <button type="submit" disabled={!inviteCode(link)}>
          Join server
        </button>
      </form>
    </Modal>
  );
}
