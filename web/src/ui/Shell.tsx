import { useCallback, useEffect, useRef, useState } from 'react';
import { useChannels, useChat, useConnection } from '../chat/hooks';
import { ChannelView } from './ChannelView';
import { Sidebar } from './Sidebar';

function channelFromHash(): string | null {
  const m = /^#\/c\/(\d+)$/.exec(window.location.hash);
  return m ? m[1] : null;
}

export function navigate(channelId: string | null) {
  window.location.hash = channelId ? `/c/${channelId}` : '/';
}

export function Shell() {
  const chat = useChat();
  const channels = useChannels();
  const connection = useConnection();
  const [active, setActive] = useState<string | null>(channelFromHash);
  const [sidebarOpen, setSidebarOpen] = useState(active === null);

  useEffect(() => {
    const onHash = () => {
      setActive(channelFromHash());
      setSidebarOpen(false);
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  const channel = channels.find((c) => c.id === active);
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

  // A channel that went away (deleted, left, removed) closes.
  const seen = useRef<string | null>(null);
  useEffect(() => {
    if (channel) seen.current = channel.id;
    else if (active && seen.current === active) {
      seen.current = null;
      navigate(null);
    }
  }, [active, channel]);

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
      <Sidebar
        activeId={channel?.id ?? null}
        onNavigate={closeDrawer}
        onClose={channel ? closeDrawer : undefined}
      />
      {drawer && <div className="drawer-backdrop" aria-hidden="true" onClick={closeDrawer} />}
      <main className="main" aria-label="Conversation">
        {channel ? (
          <ChannelView key={channel.id} channel={channel} onMenu={() => setSidebarOpen(true)} />
        ) : (
          <div className="empty-state">
            <h2>Pick a conversation</h2>
            <p className="muted">Choose a channel or a direct message on the left, or start a new one.</p>
          </div>
        )}
      </main>
    </div>
  );
}
