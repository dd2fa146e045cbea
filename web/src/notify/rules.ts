// The one decision "does this message notify me, here, now", and the notification settings it
// rests on (Discord's: all messages / only mentions / nothing per server and per channel, mutes
// until a time, @everyone and role mentions suppressed). Pure: the store hands it everything, and
// rules.test.ts checks it. It mirrors auth's decision for pushes (auth/src/notifications.rs), so a
// desktop notification and a push agree: a muted server or channel tells of mentions only, a
// muted DM or group channel of nothing, and nobody is told of their own messages.

import type { Channel, Message, Status, UserGuildSettings } from '../api/types';
import { mentionedIds } from '../chat/mentions';

/** Discord's `message_notifications`; 3 on a channel override: follow the server. */
export const Level = { All: 0, Mentions: 1, Nothing: 2, Inherit: 3 } as const;
export type LevelValue = (typeof Level)[keyof typeof Level];

/**
 * Servers and group channels of more members than this default to only mentions, and a large
 * group is told as a server's channel is (proto's LARGE_GUILD_MEMBERS; auth's notifications.rs).
 */
export const LARGE_GUILD_MEMBERS = 250;

/** Settings by server id; DMs and group channels under `@me` (`guild_id` null on the wire). */
export type SettingsMap = Record<string, UserGuildSettings>;

export const DMS_KEY = '@me';

export function settingsKey(guildId: string | null | undefined): string {
  return guildId ?? DMS_KEY;
}

/** Whether a mute is on at `now`: muted, and its end (if any) not passed. */
export function muteActive(
  muted: boolean | undefined,
  config: { end_time?: string | null } | null | undefined,
  now: number,
): boolean {
  if (!muted) return false;
  const end = config?.end_time ? Date.parse(config.end_time) : NaN;
  return Number.isNaN(end) || end > now;
}

/** The settings that apply to one channel: its override over its server's, over the defaults. */
export interface Applied {
  level: Exclude<LevelValue, 3>;
  /** The channel's or its server's mute is on. */
  muted: boolean;
  /** The channel itself is muted (it looks muted in the list). */
  channelMuted: boolean;
  suppressEveryone: boolean;
  suppressRoles: boolean;
  /** Told as a server's channel: one, or a group channel of more than LARGE_GUILD_MEMBERS. */
  asServer: boolean;
}

/** `memberCount`: the server's members for a server's channel, the channel's for a group. */
export function applied(
  all: SettingsMap,
  channel: Pick<Channel, 'id' | 'guild_id'>,
  memberCount: number,
  now: number,
): Applied {
  const inGuild = !!channel.guild_id;
  const large = memberCount > LARGE_GUILD_MEMBERS;
  const largeGroup = !inGuild && large;
  const base = all[settingsKey(channel.guild_id)];
  const over = base?.channel_overrides.find((o) => o.channel_id === channel.id);
  const fallback = large ? Level.Mentions : Level.All;
  const overLevel = over?.message_notifications;
  // In a large group only the channel's own override chooses every message.
  const baseLevel = largeGroup ? undefined : (base?.message_notifications as LevelValue | undefined);
  const level = overLevel !== undefined && overLevel !== Level.Inherit ? overLevel : (baseLevel ?? fallback);
  const channelMuted = muteActive(over?.muted, over?.mute_config, now);
  return {
    level: (level === Level.Inherit ? fallback : level) as Applied['level'],
    muted: channelMuted || muteActive(base?.muted, base?.mute_config, now),
    channelMuted,
    suppressEveryone: base?.suppress_everyone ?? false,
    suppressRoles: base?.suppress_roles ?? false,
    asServer: inGuild || largeGroup,
  };
}

/** Whether a whole server (or, for `@me`, nothing: DMs mute one by one) is muted now. */
export function guildMuted(all: SettingsMap, guildId: string, now: number): boolean {
  const s = all[guildId];
  return muteActive(s?.muted, s?.mute_config, now);
}

export type Reason = 'mention' | 'role_mention' | 'everyone' | 'direct' | 'all_messages';

export interface Situation {
  message: Pick<Message, 'author_id' | 'mentions' | 'mention_roles' | 'mention_everyone'> & {
    type?: number | null;
  };
  channel: Pick<Channel, 'id' | 'guild_id' | 'kind'>;
  me: string;
  /** My roles in the channel's server. */
  myRoles: readonly string[];
  settings: Applied;
  /** My own chosen status: Do Not Disturb silences everything. */
  myStatus: Status | undefined;
  /** I am looking at this channel in a visible tab. */
  watching: boolean;
  /** I block the author. */
  blocked: boolean;
}

/**
 * Why this message is worth a desktop notification, or null when it is not: never my own, a
 * blocked person's, a system message, one I am looking at, or while I am on Do Not Disturb;
 * otherwise as the settings say (the same rules as a push).
 */
export function shouldNotify(s: Situation): Reason | null {
  const { message: m, settings } = s;
  if (m.author_id === s.me || s.blocked || s.watching || s.myStatus === 'dnd') return null;
  if (m.type) return null; // a system message (a pin's notice) tells nobody, as for pushes
  let mention: Reason | null = null;
  if (mentionedIds(m).includes(s.me)) mention = 'mention';
  else if (!settings.suppressRoles && (m.mention_roles ?? []).some((r) => s.myRoles.includes(r)))
    mention = 'role_mention';
  else if (m.mention_everyone && !settings.suppressEveryone) mention = 'everyone';
  if (settings.level === Level.Nothing) return null;
  if (!settings.asServer) {
    // A muted DM or small group channel tells nothing; otherwise every message is for me.
    if (settings.muted) return null;
    if (mention) return mention;
    return settings.level === Level.Mentions ? null : 'direct';
  }
  if (mention) return mention;
  return !settings.muted && settings.level === Level.All ? 'all_messages' : null;
}

/** The mute lengths the menu offers, in minutes (null: until I turn it back on). */
export const MUTE_CHOICES: Array<{ label: string; minutes: number | null }> = [
  { label: 'For 15 minutes', minutes: 15 },
  { label: 'For 1 hour', minutes: 60 },
  { label: 'For 8 hours', minutes: 8 * 60 },
  { label: 'For 24 hours', minutes: 24 * 60 },
  { label: 'Until I turn it back on', minutes: null },
];

/** The `mute_config` for a mute of `minutes` from `now` (null: no end). */
export function muteConfig(minutes: number | null, now: number): { end_time: string | null } | null {
  if (minutes === null) return null;
  return { end_time: new Date(now + minutes * 60_000).toISOString() };
}

/** "Muted until 14:05" or "Muted", for the menu. */
export function muteText(config: { end_time?: string | null } | null | undefined): string {
  const end = config?.end_time ? new Date(config.end_time) : null;
  if (!end || Number.isNaN(end.getTime())) return 'Muted';
  return `Muted until ${end.toLocaleString([], { hour: '2-digit', minute: '2-digit', weekday: 'short' })}`;
}

/** The settings after a PATCH, as the server would answer it, for an optimistic update. */
export function defaultSettings(guildId: string | null, memberCount: number): UserGuildSettings {
  return {
    guild_id: guildId,
    message_notifications: guildId && memberCount > LARGE_GUILD_MEMBERS ? Level.Mentions : Level.All,
    muted: false,
    mute_config: null,
    suppress_everyone: false,
    suppress_roles: false,
    channel_overrides: [],
  };
}
