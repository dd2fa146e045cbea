import { useState } from 'react';
import type { Channel } from '../api/types';
import { session } from '../auth/session';
import { useChannels, useChat, usePresence, useUsers } from '../chat/hooks';
import { channelTitle, displayName, dmPeer } from '../chat/store';
import { Avatar, statusLabel } from './Avatar';
import { CreateChannelDialog, NewDmDialog, ProfileDialog } from './dialogs';
import { presenceOf } from './presence';
import { navigate } from './Shell';
import { BellIcon, CloseIcon, GearIcon, PlusIcon, ShieldIcon } from './icons';
import { DevicePrefsDialog } from '../notify/DevicePrefs';
import { useMuted } from '../notify/hooks';
import { PrivacyDialog } from './privacy';
import { MentionBadge } from './conversation';

function UnreadBadge({ count }: { count: number }) {
  if (count <= 0) return null;
  const text = count >= 100 ? '99+' : String(count);
  return (
    <span className="badge" aria-label={`${count >= 100 ? '100 or more' : count} unread`}>
      {text}
    </span>
  );
}

export function Sidebar({
  activeId,
  onNavigate,
  onClose,
}: {
  activeId: string | null;
  /** A channel was chosen (the open one included). */
  onNavigate?: () => void;
  /** Closes the list where it is a drawer (phone width); no button without it. */
  onClose?: () => void;
}) {
  const chat = useChat();
  const channels = useChannels();
  const users = useUsers();
  const presence = usePresence();
  const [dialog, setDialog] = useState<'channel' | 'dm' | 'profile' | 'privacy' | 'notifications' | null>(
    null,
  );
  const me = users[chat.me.id] ?? session.user ?? chat.me;
  const muted = useMuted();
  const groups = channels.filter((c) => c.kind === 'group');
  const dms = channels.filter((c) => c.kind === 'dm');

  const item = (c: Channel) => {
    const unread = c.unread_count ?? 0;
    const other = dmPeer(c);
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
          {c.kind === 'dm' ? (
            <Avatar user={other} size={24} status={presenceOf(other, presence, chat.me.id)} />
          ) : (
            <span className="hash" aria-hidden="true">
              #
            </span>
          )}
          <span className="channel-name">{channelTitle(c, chat.me.id)}</span>
          {quiet && <span className="sr-only"> (muted)</span>}
          <UnreadBadge count={unread} />
          <MentionBadge count={c.mention_count ?? 0} />
        </a>
      </li>
    );
  };

  const myStatus = presenceOf(me, presence, chat.me.id);
  return (
    <nav className="sidebar" aria-label="Channels and direct messages">
      <div className="sidebar-title">
        Natter
        {onClose && (
          <button className="icon drawer-close" aria-label="Close channels" onClick={onClose}>
            <CloseIcon />
          </button>
        )}
      </div>
      <div className="sidebar-scroll">
        <section aria-labelledby="channels-heading">
          <div className="section-head">
            <h2 id="channels-heading">Channels</h2>
            <button className="icon" aria-label="Create a channel" onClick={() => setDialog('channel')}>
              <PlusIcon />
            </button>
          </div>
          <ul>{groups.map(item)}</ul>
          {groups.length === 0 && <p className="muted small pad">No channels yet.</p>}
        </section>
        <section aria-labelledby="dms-heading">
          <div className="section-head">
            <h2 id="dms-heading">Direct messages</h2>
            <button className="icon" aria-label="Start a direct message" onClick={() => setDialog('dm')}>
              <PlusIcon />
            </button>
          </div>
          <ul>{dms.map(item)}</ul>
        </section>
      </div>
      <div className="me-bar">
        <Avatar user={me} size={32} status={myStatus} />
        <div className="me-names">
          <strong>{displayName(me)}</strong>
          <span className="muted small">{statusLabel(me.status)}</span>
        </div>
        <button
          className="icon"
          aria-label="Notifications on this device"
          onClick={() => setDialog('notifications')}
        >
          <BellIcon />
        </button>
        <button className="icon" aria-label="Privacy" onClick={() => setDialog('privacy')}>
          <ShieldIcon />
        </button>
        <button className="icon" aria-label="Profile and settings" onClick={() => setDialog('profile')}>
          <GearIcon />
        </button>
      </div>
      {dialog === 'channel' && (
        <CreateChannelDialog
          onClose={() => setDialog(null)}
          onCreated={(c) => {
            setDialog(null);
            navigate(c.id);
          }}
        />
      )}
      {dialog === 'dm' && (
        <NewDmDialog
          onClose={() => setDialog(null)}
          onOpened={(c) => {
            setDialog(null);
            navigate(c.id);
          }}
        />
      )}
      {dialog === 'profile' && <ProfileDialog onClose={() => setDialog(null)} />}
      {dialog === 'privacy' && <PrivacyDialog onClose={() => setDialog(null)} />}
      {dialog === 'notifications' && <DevicePrefsDialog onClose={() => setDialog(null)} />}
    </nav>
  );
}
