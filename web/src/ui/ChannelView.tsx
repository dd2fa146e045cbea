import { useEffect, useState } from 'react';
import type { Channel } from '../api/types';
import { useChat, useTyping, useUsers } from '../chat/hooks';
import { channelTitle, displayName } from '../chat/store';
import { Composer, SlowDownNotice } from './Composer';
import { ChannelSettingsDialog } from './dialogs';
import { GuildChannelSettings } from './guild/ChannelDialogs';
import { ChannelGlyph } from './guild/GuildSidebar';
import { GuildMemberList } from './guild/GuildMemberList';
import { useSendBlocked, VoicePane } from './guild/GuildChannel';
import { CallBar } from '../voice/VoicePanel';
import { useGuild, useMyPermissions } from '../guilds/hooks';
import { has, Permission } from '../guilds/permissions';
import { MemberList } from './MemberList';
import type { ChatMessage } from '../chat/messageList';
import { PinsPanel } from './conversation';
import { SearchBox, SearchPanel } from '../search/SearchPanel';
import { MessageList } from './MessageList';
import { ProfileCard } from './ProfileCard';
import { BellIcon, GearIcon, MenuIcon, PeopleIcon } from './icons';
import { NotificationSettingsDialog } from '../notify/NotificationSettings';
import { useApplied } from '../notify/hooks';

export function typingText(names: string[]): string {
  if (names.length === 0) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return 'Several people are typing…';
}

export function ChannelView({
  channel,
  onMenu,
  openAt,
}: {
  channel: Channel;
  onMenu: () => void;
  /** A message to open the channel at (`openMessage`), new each time it is asked. */
  openAt?: { id: string; n: number } | null;
}) {
  const chat = useChat();
  const users = useUsers();
  const typing = useTyping(channel.id);
  const [membersOpen, setMembersOpen] = useState(false);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [bellOpen, setBellOpen] = useState(false);
  const notifications = useApplied(channel);
  const [editing, setEditingState] = useState<string | null>(null);
  const setEditing = (id: string | null) => {
    setEditingState(id);
    // Back to the composer when an edit ends, so the keyboard stays where the writing is.
    if (id === null)
      requestAnimationFrame(() => document.querySelector<HTMLTextAreaElement>('.composer textarea')?.focus());
  };
  const [replyTo, setReplyTo] = useState<ChatMessage | null>(null);
  const [jump, setJump] = useState<string | null>(openAt?.id ?? null);
  useEffect(() => {
    if (openAt) setJump(openAt.id);
  }, [openAt]);
  const [searchOpen, setSearchOpen] = useState<string | null>(null);
  const [pinsOpen, setPinsOpen] = useState(false);
  const [card, setCard] = useState<string | null>(null);
  const guild = useGuild(channel.guild_id);
  const mine = useMyPermissions(channel.guild_id, channel);
  const moderates = guild
    ? has(mine, Permission.MANAGE_MESSAGES)
    : channel.role === 'owner' || channel.role === 'moderator';
  const blocked = useSendBlocked(guild, channel);
  const title = channelTitle(channel, chat.me.id);
  const label = channel.kind === 'dm' ? `@${title}` : `#${title}`;

  return (
    <div className={`channel ${membersOpen ? 'members-open' : ''}`}>
      <header className="channel-header">
        <button className="icon menu-button" aria-label="Show channels" onClick={onMenu}>
          <MenuIcon />
        </button>
        <h1 className="channel-title">
          {guild ? (
            <ChannelGlyph kind={channel.kind} />
          ) : (
            <span className="hash" aria-hidden="true">
              {channel.kind === 'dm' ? '@' : '#'}
            </span>
          )}
          {title}
        </h1>
        {channel.topic && <span className="topic muted">{channel.topic}</span>}
        <div className="header-actions">
          {channel.kind !== 'voice' && (
            <SearchBox channel={channel} onSearch={(text) => setSearchOpen(text)} />
          )}
          {channel.kind !== 'voice' && (
            <button
              className="icon"
              aria-label="Notification settings"
              title={notifications.muted ? 'Notification settings (muted)' : 'Notification settings'}
              onClick={() => setBellOpen(true)}
            >
              <BellIcon off={notifications.muted} />
            </button>
          )}
          <button
            className="icon"
            aria-label="Pinned messages"
            aria-pressed={pinsOpen}
            onClick={() => setPinsOpen((o) => !o)}
          >
            📌
          </button>
          <button
            className="icon"
            aria-label="Members"
            aria-pressed={membersOpen}
            onClick={() => setMembersOpen((o) => !o)}
          >
            <PeopleIcon />
          </button>
          {guild && (has(mine, Permission.MANAGE_CHANNELS) || has(mine, Permission.MANAGE_ROLES)) && (
            <button className="icon" aria-label="Channel settings" onClick={() => setSettingsOpen(true)}>
              <GearIcon />
            </button>
          )}
          {channel.kind === 'group' && (
            <button className="icon" aria-label="Channel settings" onClick={() => setSettingsOpen(true)}>
              <GearIcon />
            </button>
          )}
        </div>
      </header>
      <div className="channel-body">
        {channel.kind === 'voice' ? (
          <VoicePane channel={channel} />
        ) : (
          <section className="conversation" aria-label={`Messages in ${label}`}>
            {(channel.kind === 'dm' || channel.kind === 'group') && <CallBar channelId={channel.id} />}
            <MessageList
              channel={channel}
              editing={editing}
              onEdit={setEditing}
              onReply={(m) => {
                setReplyTo(m);
                document.querySelector<HTMLTextAreaElement>('.composer textarea')?.focus();
              }}
              moderates={moderates}
              jump={jump}
              onJump={setJump}
              onUser={(id) => setCard(id)}
            />
            <div className="typing" aria-live="polite">
              {typingText(typing.map((id) => displayName(users[id])))}
            </div>
            <SlowDownNotice channelId={channel.id} />
            <Composer
              channelId={channel.id}
              label={`Message ${label}`}
              onEditLast={() => setEditing(chat.lastOwnMessage(channel.id))}
              disabled={blocked ?? undefined}
              replyTo={replyTo?.id}
              replyName={replyTo ? displayName(users[replyTo.author_id]) : undefined}
              onCancelReply={() => setReplyTo(null)}
            />
          </section>
        )}
        {pinsOpen && (
          <PinsPanel
            channel={channel}
            onJump={(id) => {
              setJump(id);
              setPinsOpen(false);
            }}
            onClose={() => setPinsOpen(false)}
          />
        )}
        {searchOpen !== null && (
          <SearchPanel
            key={searchOpen}
            channel={channel}
            text={searchOpen}
            onClose={() => setSearchOpen(null)}
          />
        )}
        {card && <ProfileCard userId={card} onClose={() => setCard(null)} />}
        {membersOpen &&
          (guild ? (
            <GuildMemberList guild={guild} onUser={setCard} />
          ) : (
            <MemberList channel={channel} onUser={setCard} />
          ))}
      </div>
      {settingsOpen && guild && (
        <GuildChannelSettings guild={guild} channelId={channel.id} onClose={() => setSettingsOpen(false)} />
      )}
      {bellOpen && (
        <NotificationSettingsDialog
          guildId={channel.guild_id ?? null}
          channel={channel}
          onClose={() => setBellOpen(false)}
        />
      )}
      {settingsOpen && !guild && (
        <ChannelSettingsDialog channelId={channel.id} onClose={() => setSettingsOpen(false)} />
      )}
    </div>
  );
}
