import { useCallback, useEffect, useRef, useState } from 'react';
import { useChannels, useChat, useConnection } from '../chat/hooks';
import { byPosition, useGuilds } from '../guilds/hooks';
import { ChannelView } from './ChannelView';
import { GuildSidebar } from './guild/GuildSidebar';
import { InvitePage, inviteFromPath, NoticeBanner } from './guild/InvitePage';
import { ServerRail } from './guild/ServerRail';
import { Sidebar } from './Sidebar';
import { showFaviconBadge, titleFor } from '../notify/badge';

function channelFromHash(): string | null {
  const m = /^#\/c\/(\d+)(?:\/\d+)?$/.exec(window.location.hash);
  if (m) return m[1];
  // A notification's link, /channels/{guild|@me}/{channel}/{message}, opens the channel at the
  // message, as `#/c/{channel}/{message}` does.
  const p = /^\/channels\/(?:\d+|@me)\/(\d+)(?:\/\d+)?\/?$/.exec(window.location.pathname);
  return !window.location.hash && p ? p[1] : null;
}

/** A message to open its channel at (`#/c/{channel}/{message}`, or a notification's link). */
function messageFromHash(): string | null {
  const m = /^#\/c\/\d+\/(\d+)$/.exec(window.location.hash);
  if (m) return m[1];
  const p = /^\/channels\/(?:\d+|@me)\/\d+\/(\d+)\/?$/.exec(window.location.pathname);
  return !window.location.hash && p ? p[1] : null;
}

/** A server chosen without a channel (`#/g/{id}`): its first channel opens. */
function guildFromHash(): string | null {
  const m = /^#\/g\/(\d+)$/.exec(window.location.hash);
  return m ? m[1] : null;
}

export function navigate(channelId: string | null) {
  window.location.hash = channelId ? `/c/${channelId}` : '/';
}

/**
 * Opens a channel at one of its messages, however old (`#/c/{channel}/{message}`): the channel's
 * history is loaded around it (`around=`), it is scrolled to and highlighted, and the reader
 * pages up and down from there or jumps back to the present. Search hits, replies' originals and
 * notifications all come here.
 */
export function openMessage(channelId: string, messageId: string) {
  window.location.hash = `/c/${channelId}/${messageId}`;
}

export function navigateGuild(guildId: string) {
  window.location.hash = `/g/${guildId}`;
}

export function Shell() {
  const chat = useChat();
  const channels = useChannels();
  // The unread total in the tab's title, as Discord shows it: "(3) Natter", and on the favicon.
  const unreadTotal = channels.reduce((sum, c) => sum + (c.unread_count ?? 0), 0);
  useEffect(() => {
    document.title = titleFor(unreadTotal);
    void showFaviconBadge(unreadTotal);
  }, [unreadTotal]);
  useEffect(() => () => void showFaviconBadge(0), []);
  const connection = useConnection();
  const guilds = useGuilds();
  const [active, setActive] = useState<string | null>(channelFromHash);
  // The message to open the channel at, with a count so the same link opens it again.
  const [target, setTarget] = useState<{ channel: string; id: string; n: number } | null>(() => {
    const id = messageFromHash();
    const channel = channelFromHash();
    return id && channel ? { channel, id, n: 0 } : null;
  });
  const [hashGuild, setHashGuild] = useState<string | null>(guildFromHash);
  const [invite, setInvite] = useState<string | null>(inviteFromPath);
  const [sidebarOpen, setSidebarOpen] = useState(active === null);

  useEffect(() => {
    const onHash = () => {
      setActive(channelFromHash());
      const message = messageFromHash();
      const channel = channelFromHash();
      if (message && channel) {
        setTarget((t) => ({ channel, id: message, n: (t?.n ?? 0) + 1 }));
        // The address stays the channel's, so opening the same message again is a change too.
        window.history.replaceState(null, '', `#/c/${channelFromHash()}`);
      }
      setHashGuild(guildFromHash());
      setSidebarOpen(false);
    };
    const onPath = () => setInvite(inviteFromPath());
    window.addEventListener('hashchange', onHash);
    window.addEventListener('popstate', onPath);
    return () => {
      window.removeEventListener('hashchange', onHash);
      window.removeEventListener('popstate', onPath);
    };
  }, []);

  const found = channels.find((c) => c.id === active);
  // A category is a heading, never a conversation.
  const channel = found?.kind === 'category' ? undefined : found;
  const guildId = channel ? (channel.guild_id ?? null) : hashGuild;
  const guild = guilds.find((g) => g.id === guildId);
  // A server chosen without a channel opens its first text channel the user may view.
  const firstText = channels.filter((c) => c.guild_id === hashGuild && c.kind === 'text').sort(byPosition)[0];
  useEffect(() => {
    if (!channel && hashGuild && firstText) window.location.replace(`#/c/${firstText.id}`);
  }, [channel, hashGuild, firstText]);
  // At phone width the channel list is a drawer over the conversation (CSS shows it so only
  // there): it closes on a tap on any channel (the open one too), its close button, Escape, or a
  // tap beside it, and gives focus back to the button that opened it.
  const drawer = sidebarOpen && !!channel;
  const closeDrawer = useCallback(() => {
    setSidebarOpen(false);
    if (document.activeElement?.closest('.sidebar'))
      document.querySelector<HTMLElement>('.channel-header .menu-button')?.focus();
  }, []);
  useEffect(() => {
    if (!drawer) return;
    document.querySelector<HTMLElement>('.sidebar .drawer-close')?.focus();
    const onKey = (e: KeyboardEvent) => {
      // A dialog opened from the drawer takes its own Escape.
      if (e.key === 'Escape' && !(e.target instanceof Element && e.target.closest('dialog'))) closeDrawer();
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [drawer, closeDrawer]);

  useEffect(() => {
    chat.setActive(channel ? channel.id : null);
  }, [chat, channel?.id]); // eslint-disable-line react-hooks/exhaustive-deps

  // A channel that went away (deleted, left, removed, no longer visible) closes: back to its
  // server while the user is still in it.
  const seen = useRef<{ id: string; guild: string | null } | null>(null);
  useEffect(() => {
    if (channel) seen.current = { id: channel.id, guild: channel.guild_id ?? null };
    else if (active && seen.current?.id === active) {
      const from = seen.current.guild;
      seen.current = null;
      if (from && guilds.some((g) => g.id === from)) navigateGuild(from);
      else navigate(null);
    }
  }, [active, channel, guilds]);

  return (
    <div className={`shell ${sidebarOpen || !channel ? 'sidebar-open' : ''} ${drawer ? 'drawer' : ''}`}>
      {connection.reconnecting && (
        <div className="banner" role="status">
          Connection lost. Reconnecting…
        </div>
      )}
      {!connection.reconnecting && connection.state !== 'ready' && (
        <div className="banner quiet" role="status">
          Connecting…
        </div>
      )}
      <NoticeBanner />
      <ServerRail activeGuildId={guild ? guild.id : null} />
      {guild ? (
        <GuildSidebar
          guild={guild}
          activeId={channel?.id ?? null}
          onNavigate={closeDrawer}
          onClose={channel ? closeDrawer : undefined}
        />
      ) : (
        <Sidebar
          activeId={channel?.id ?? null}
          onNavigate={closeDrawer}
          onClose={channel ? closeDrawer : undefined}
        />
      )}
      {drawer && <div className="drawer-backdrop" aria-hidden="true" onClick={closeDrawer} />}
      <main className="main" aria-label="Conversation">
        {invite ? (
          <InvitePage code={invite} />
        ) : channel ? (
          <ChannelView
            key={channel.id}
            channel={channel}
            onMenu={() => setSidebarOpen(true)}
            openAt={target?.channel === channel.id ? target : null}
          />
        ) : (
          <div className="empty-state">
            <h2>Pick a conversation</h2>
            <p className="muted">
              {guild
                ? 'There is no channel here you may see yet.'
                : 'Choose a channel or a direct message on the left, or start a new one.'}
            </p>
          </div>
        )}
      </main>
    </div>
  );
}
