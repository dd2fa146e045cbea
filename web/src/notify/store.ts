// The client's side of notifications: my notification settings (READY's `user_guild_settings`,
// kept current by USER_GUILD_SETTINGS_UPDATE from any device, changed through auth's PATCH), and
// the desktop notification and sound for a new message while the tab is hidden, decided by
// rules.ts. The mentions inbox is read from notify (ui: InboxButton) and Web Push is push.ts.

import type { QueryClient } from '@tanstack/react-query';
import { call } from '../api/rest';
import type {
  Channel,
  MentionEntry,
  Message,
  Status,
  UpdateUserGuildSettingsRequest,
  User,
  UserGuildSettings,
} from '../api/types';
import { applied, settingsKey, shouldNotify, type Applied, type SettingsMap } from './rules';
import { previewText } from './inbox';
import { playTone } from './sound';

export const notifyKeys = {
  /** My notification settings by server id (`@me`: DMs and group channels). */
  settings: ['guildSettings'] as const,
  /** This device's choices (sound, desktop notifications), kept in localStorage. */
  prefs: ['notifyPrefs'] as const,
  /** The mentions inbox (notify's `GET /users/@me/mentions`). */
  inbox: ['mentionsInbox'] as const,
};

export interface Prefs {
  /** Desktop notifications while the tab is hidden (the browser's permission is asked too). */
  desktop: boolean;
  /** A short tone with each one. */
  sound: boolean;
}

const PREFS_KEY = 'natter.notify.prefs';

function loadPrefs(): Prefs {
  try {
    const raw = JSON.parse(localStorage.getItem(PREFS_KEY) ?? '{}') as Partial<Prefs>;
    return { desktop: raw.desktop ?? true, sound: raw.sound ?? true };
  } catch {
    return { desktop: true, sound: true };
  }
}

/** What the notifications need from the rest of the chat. */
export interface NotifyDeps {
  channel(id: string): Channel | undefined;
  myRoles(channelId: string): string[];
  guildMemberCount(guildId: string): number;
  isBlocked(userId: string): boolean;
  myStatus(): Status | undefined;
  authorName(userId: string): string;
  guildName(guildId: string): string | undefined;
  knowsUser(userId: string): boolean;
  rememberUsers(users: User[]): void;
}

/** Inbox entries read at once (the list shows the newest; older ones leave as they are read). */
const INBOX_PAGE = 50;

export class Notifications {
  /** Where the notify service is (discovery's `notify_url`); null before discovery or without one. */
  notifyUrl: string | null = null;

  constructor(
    private readonly qc: QueryClient,
    private readonly me: string,
    private readonly deps: NotifyDeps,
  ) {
    qc.setQueryData(notifyKeys.prefs, loadPrefs());
  }

  // ---- settings ------------------------------------------------------------------------------

  all(): SettingsMap {
    return this.qc.getQueryData<SettingsMap>(notifyKeys.settings) ?? {};
  }

  setAll(list: UserGuildSettings[]) {
    const next: SettingsMap = {};
    for (const s of list) next[settingsKey(s.guild_id)] = s;
    this.qc.setQueryData(notifyKeys.settings, next);
  }

  /** USER_GUILD_SETTINGS_UPDATE, or a PATCH's answer: one server's settings as they now are. */
  onUpdate(s: UserGuildSettings) {
    this.qc.setQueryData<SettingsMap>(notifyKeys.settings, (old) => ({
      ...(old ?? {}),
      [settingsKey(s.guild_id)]: s,
    }));
  }

  /** Changes my settings of a server (`null`: DMs and group channels). */
  async update(guildId: string | null, patch: UpdateUserGuildSettingsRequest): Promise<UserGuildSettings> {
    const s = await call<UserGuildSettings>(`/api/v1/users/@me/guilds/${settingsKey(guildId)}/settings`, {
      method: 'PATCH',
      body: patch,
    });
    this.onUpdate(s);
    return s;
  }

  /** The settings that apply to a channel now. */
  appliedTo(channel: Pick<Channel, 'id' | 'guild_id' | 'member_count'>, now = Date.now()): Applied {
    const count = channel.guild_id
      ? this.deps.guildMemberCount(channel.guild_id)
      : (channel.member_count ?? 0);
    return applied(this.all(), channel, count, now);
  }

  // ---- the mentions inbox --------------------------------------------------------------------

  /**
   * My recent mentions and DMs from notify, newest first, with their authors' profiles loaded
   * (an entry may come from a channel whose messages this device never loaded).
   */
  async loadInbox(): Promise<MentionEntry[]> {
    if (!this.notifyUrl) throw new Error('The notification service is not available.');
    const entries = await call<MentionEntry[]>(`/api/v1/users/@me/mentions?limit=${INBOX_PAGE}`, {
      origin: this.notifyUrl,
    });
    const unknown = [...new Set(entries.map((e) => e.author_id))].filter((id) => !this.deps.knowsUser(id));
    await this.loadUsers(unknown.slice(0, 20));
    return entries;
  }

  /** Takes one entry out of my inbox (on every device). */
  async dismiss(messageId: string): Promise<void> {
    if (!this.notifyUrl) return;
    await call<void>(`/api/v1/users/@me/mentions/${messageId}`, { method: 'DELETE', origin: this.notifyUrl });
    this.qc.setQueryData<MentionEntry[]>(notifyKeys.inbox, (old) => old?.filter((e) => e.id !== messageId));
  }

  /** A message that may be in my inbox came, or one left: the list is read again when next shown. */
  inboxChanged() {
    void this.qc.invalidateQueries({ queryKey: notifyKeys.inbox });
  }

  // ---- this device's choices -----------------------------------------------------------------

  prefs(): Prefs {
    return this.qc.getQueryData<Prefs>(notifyKeys.prefs) ?? loadPrefs();
  }

  setPrefs(patch: Partial<Prefs>) {
    const next = { ...this.prefs(), ...patch };
    localStorage.setItem(PREFS_KEY, JSON.stringify(next));
    this.qc.setQueryData(notifyKeys.prefs, next);
  }

  // ---- a new message ---------------------------------------------------------------------------

  /**
   * A new message arrived. `watching`: it is the open channel in a visible tab. While the tab is
   * hidden, a message the settings say notifies me shows a desktop notification (and a tone),
   * which opens the channel at the message when clicked.
   */
  onMessage(m: Message, watching: boolean) {
    // Visible: the badges and the highlighted message say it.
    if (document.visibilityState !== 'hidden') return;
    const channel = this.deps.channel(m.channel_id);
    if (!channel) return;
    const reason = shouldNotify({
      message: m,
      channel,
      me: this.me,
      myRoles: this.deps.myRoles(m.channel_id),
      settings: this.appliedTo(channel),
      myStatus: this.deps.myStatus(),
      watching,
      blocked: this.deps.isBlocked(m.author_id),
    });
    if (!reason) return;
    if (!this.prefs().desktop) return;
    // The author may be someone this device has not met yet (no members loaded): ask first.
    if (this.deps.knowsUser(m.author_id)) this.show(m, channel);
    else
      void this.loadUsers([m.author_id]).finally(() => {
        if (document.visibilityState === 'hidden') this.show(m, channel);
      });
  }

  private async loadUsers(ids: string[]) {
    const users = await Promise.all(ids.map((id) => call<User>(`/api/v1/users/${id}`).catch(() => null)));
    this.deps.rememberUsers(users.filter((u): u is User => u !== null));
  }

  private show(m: Message, channel: Channel) {
    const prefs = this.prefs();
    const author = this.deps.authorName(m.author_id);
    const server = channel.guild_id ? this.deps.guildName(channel.guild_id) : undefined;
    const where =
      channel.kind === 'dm' ? null : `#${channel.name ?? 'channel'}${server ? ` (${server})` : ''}`;
    const title = where ? `${author} in ${where}` : author;
    const text = previewText(m.content, (id) => this.deps.authorName(id)).slice(0, 200);
    const body = text || (m.attachments?.length ? 'sent a file' : '');
    if (prefs.sound) playTone();
    if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
    try {
      const n = new Notification(title, { body, tag: `channel-${m.channel_id}`, icon: '/favicon.svg' });
      n.onclick = () => {
        window.focus();
        window.location.hash = `/c/${m.channel_id}/${m.id}`;
        n.close();
      };
    } catch {
      // Some browsers (Android Chrome) allow notifications only from a service worker.
    }
  }
}
