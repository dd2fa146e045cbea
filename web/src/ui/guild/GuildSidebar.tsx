import { VoiceChannelMembers } from '../../voice/VoicePanel';
import { useState } from 'react';
import { useChat } from '../../chat/hooks';
import { useGuildChannels, useMyPermissions } from '../../guilds/hooks';
import { has, Permission } from '../../guilds/permissions';
import type { GuildState } from '../../guilds/store';
import type { Channel } from '../../guilds/types';
import { useConfirm } from '../Confirm';
import { errorText, Modal } from '../Modal';
import { BellIcon, CloseIcon, GearIcon, PlusIcon, SpeakerIcon } from '../icons';
import { NotificationSettingsDialog } from '../../notify/NotificationSettings';
import { useMuted } from '../../notify/hooks';
import { GuildSettings, SETTINGS_PERMISSIONS } from './GuildSettings';
import { CreateGuildChannelDialog } from './ChannelDialogs';
import { MentionBadge } from '../conversation';

function UnreadBadge({ count }: { count: number }) {
  if (count <= 0) return null;
  return (
    <span className="badge" aria-label={`${count >= 100 ? '100 or more' : count} unread`}>
      {count >= 100 ? '99+' : count}
    </span>
  );
}

/** Text channels show `#`, voice channels a speaker. */
export function ChannelGlyph({ kind }: { kind: Channel['kind'] }) {
  return (
    <span className="hash" aria-hidden="true">
      {kind === 'voice' ? <SpeakerIcon /> : '#'}
    </span>
  );
}

/** Channels in their categories, as Discord lists them: the uncategorised first, then each category. */
export function inCategories(channels: Channel[]): Array<{ category: Channel | null; channels: Channel[] }> {
  const categories = channels.filter((c) => c.kind === 'category');
  const known = new Set(categories.map((c) => c.id));
  const rest = channels.filter((c) => c.kind !== 'category');
  return [
    { category: null, channels: rest.filter((c) => !c.parent_id || !known.has(c.parent_id)) },
    ...categories.map((category) => ({
      category,
      channels: rest.filter((c) => c.parent_id === category.id),
    })),
  ];
}

/** A server's channel list: its channels in collapsible categories, and its menu. */
export function GuildSidebar({
  guild,
  activeId,
  onNavigate,
  onClose,
}: {
  guild: GuildState;
  activeId: string | null;
  onNavigate?: () => void;
  onClose?: () => void;
}) {
  const chat = useChat();
  const channels = useGuildChannels(guild.id);
  const mine = useMyPermissions(guild.id);
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const [dialog, setDialog] = useState<
    | 'settings'
    | 'invite'
    | 'notifications'
    | { create: 'text' | 'voice' | 'category'; parent: string | null }
    | null
  >(null);
  const confirm = useConfirm();
  const owner = guild.owner_id === chat.me.id;
  const muted = useMuted();
  const manageChannels = has(mine, Permission.MANAGE_CHANNELS);
  const toggle = (id: string) =>
    setCollapsed((old) => {
      const next = new Set(old);
      if (!next.delete(id)) next.add(id);
      return next;
    });

  const item = (c: Channel) => {
    const unread = c.unread_count ?? 0;
    const quiet = muted.channel(c);
    return (
      <li key={c.id}>
        <a
          href={`#/c/${c.id}`}
          className={`channel-link ${c.id === activeId ? 'active' : ''} ${unread > 0 ? 'unread' : ''} ${quiet ? 'is-muted' : ''}`}
          aria-current={c.id === activeId ? 'page' : undefined}
          data-channel-id={c.id}
          onClick={onNavigate}
        >
          <ChannelGlyph kind={c.kind} />
          <span className="channel-name">{c.name}</span>
          {c.kind === 'voice' && <span className="sr-only"> (voice)</span>}
          {quiet && <span className="sr-only"> (muted)</span>}
          <UnreadBadge count={unread} />
          <MentionBadge count={c.mention_count ?? 0} />
        </a>
        {c.kind === 'voice' && <VoiceChannelMembers channelId={c.id} />}
      </li>
    );
  };

  return (
    <nav className="sidebar" aria-label={`${guild.name} channels`}>
      <div className="sidebar-title">
        <span className="channel-name">{guild.name}</span>
        {onClose && (
          <button className="icon drawer-close" aria-label="Close channels" onClick={onClose}>
            <CloseIcon />
          </button>
        )}
      </div>
      <div className="guild-actions">
        {has(mine, Permission.CREATE_INSTANT_INVITE) && (
          <button className="small" onClick={() => setDialog('invite')}>
            Invite people
          </button>
        )}
        <button
          className="icon"
          aria-label="Server notification settings"
          title="Notification settings"
          onClick={() => setDialog('notifications')}
        >
          <BellIcon off={muted.guild(guild.id)} />
        </button>
        {(mine & SETTINGS_PERMISSIONS) !== 0n && (
          <button
            className="icon"
            aria-label="Server settings"
            title="Server settings"
            onClick={() => setDialog('settings')}
          >
            <GearIcon />
          </button>
        )}
        {manageChannels && (
          <button
            className="icon"
            aria-label="Create a category"
            title="Create a category"
            onClick={() => setDialog({ create: 'category', parent: null })}
          >
            <PlusIcon />
          </button>
        )}
      </div>
      <div className="sidebar-scroll">
        {inCategories(channels).map(({ category, channels: list }) => {
          const id = category?.id ?? 'none';
          const shut = category && collapsed.has(category.id);
          if (!category && list.length === 0) return null;
          return (
            <section key={id} aria-label={category ? category.name! : 'Channels'}>
              {category && (
                <div className="section-head">
                  <button
                    className="category-toggle"
                    aria-expanded={!shut}
                    onClick={() => toggle(category.id)}
                  >
                    <span aria-hidden="true">{shut ? '›' : '⌄'}</span> {category.name}
                  </button>
                  {manageChannels && (
                    <button
                      className="icon"
                      aria-label={`Create a channel in ${category.name}`}
                      onClick={() => setDialog({ create: 'text', parent: category.id })}
                    >
                      <PlusIcon />
                    </button>
                  )}
                </div>
              )}
              {!category && manageChannels && (
                <div className="section-head">
                  <h2>Channels</h2>
                  <button
                    className="icon"
                    aria-label="Create a channel"
                    onClick={() => setDialog({ create: 'text', parent: null })}
                  >
                    <PlusIcon />
                  </button>
                </div>
              )}
              {/* A collapsed category still shows the open channel, as Discord does. */}
              <ul>{list.filter((c) => !shut || c.id === activeId).map(item)}</ul>
            </section>
          );
        })}
      </div>
      {!owner && (
        <div className="me-bar">
          <button
            className="danger small"
            onClick={() =>
              confirm.ask({
                title: `Leave ${guild.name}?`,
                confirm: 'Leave server',
                onConfirm: () => chat.guilds.leave(guild.id).then(() => (window.location.hash = '/')),
                children: (
                  <p>
                    You will no longer see {guild.name} or its channels. You can come back only through a new
                    invite.
                  </p>
                ),
              })
            }
          >
            Leave server
          </button>
        </div>
      )}
      {confirm.dialog}
      {dialog === 'settings' && <GuildSettings guild={guild} onClose={() => setDialog(null)} />}
      {dialog === 'invite' && <InviteDialog guild={guild} onClose={() => setDialog(null)} />}
      {dialog === 'notifications' && (
        <NotificationSettingsDialog guildId={guild.id} onClose={() => setDialog(null)} />
      )}
      {dialog && typeof dialog === 'object' && (
        <CreateGuildChannelDialog
          guild={guild}
          kind={dialog.create}
          parentId={dialog.parent}
          onClose={() => setDialog(null)}
        />
      )}
    </nav>
  );
}

/** Makes an invite (a day, any number of uses) and shows its link. */
function InviteDialog({ guild, onClose }: { guild: GuildState; onClose: () => void }) {
  const chat = useChat();
  const [link, setLink] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const make = (max_age: number) => {
    setError(null);
    chat.guilds.createInvite(guild.id, { max_age }).then(
      (i) => setLink(`${window.location.origin}/invite/${i.code}`),
      (e) => setError(errorText(e)),
    );
  };
  return (
    <Modal title={`Invite people to ${guild.name}`} onClose={onClose}>
      <div className="stack">
        {!link && (
          <>
            <p className="muted">Anyone with the link can join. It lasts as long as you choose.</p>
            <div className="row">
              <button className="primary" onClick={() => make(86400)}>
                Create a link for a day
              </button>
              <button onClick={() => make(0)}>Create a link that never expires</button>
            </div>
          </>
        )}
        {link && (
          <label>
            Invite link
            <input name="invite-link" readOnly value={link} onFocus={(e) => e.target.select()} />
          </label>
        )}
        {link && (
          <button
            onClick={() =>
              navigator.clipboard?.writeText(link).then(
                () => setCopied(true),
                () => setCopied(false),
              )
            }
          >
            {copied ? 'Copied' : 'Copy'}
          </button>
        )}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
      </div>
    </Modal>
  );
}
