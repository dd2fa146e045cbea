import { describe, expect, it } from 'vitest';
import type { UserGuildSettings } from '../api/types';
import {
  applied,
  defaultSettings,
  guildMuted,
  Level,
  muteActive,
  muteConfig,
  shouldNotify,
  type Situation,
  type SettingsMap,
} from './rules';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const ME = '1';
const ANN = '2';
const GUILD = '100';
const CHANNEL = { id: '10', guild_id: GUILD, kind: 'text' as const };
/** A message's `mentions` naming me (Discord's user objects). */
const MENTIONS_ME = [{ id: ME, username: 'me', global_name: null, avatar_url: null }];
const DM = { id: '20', guild_id: null, kind: 'dm' as const };

function settings(patch: Partial<UserGuildSettings> = {}, guild: string | null = GUILD): UserGuildSettings {
  return { ...defaultSettings(guild, 3), ...patch };
}

function situation(
  all: SettingsMap,
  message: Partial<Situation['message']> = {},
  more: Partial<Situation> = {},
): Situation {
  const channel = more.channel ?? CHANNEL;
  return {
    message: { author_id: ANN, mentions: [], mention_roles: [], mention_everyone: false, ...message },
    channel,
    me: ME,
    myRoles: ['r1'],
    settings: applied(all, channel, 3, NOW),
    myStatus: 'online',
    watching: false,
    blocked: false,
    ...more,
  };
}

describe('shouldNotify', () => {
  it('tells of every message in a small server by default, and of mentions by name', () => {
    expect(shouldNotify(situation({}))).toBe('all_messages');
    expect(shouldNotify(situation({}, { mentions: MENTIONS_ME }))).toBe('mention');
  });

  it('never tells of my own message, a blocked author, a system message or what I am watching', () => {
    expect(shouldNotify(situation({}, { author_id: ME, mentions: MENTIONS_ME }))).toBeNull();
    expect(shouldNotify(situation({}, { mentions: MENTIONS_ME }, { blocked: true }))).toBeNull();
    expect(shouldNotify(situation({}, { type: 6 }))).toBeNull();
    expect(shouldNotify(situation({}, { mentions: MENTIONS_ME }, { watching: true }))).toBeNull();
  });

  it('tells nothing at all while my status is Do Not Disturb', () => {
    expect(shouldNotify(situation({}, { mentions: MENTIONS_ME }, { myStatus: 'dnd' }))).toBeNull();
    expect(shouldNotify(situation({}, {}, { channel: DM, myStatus: 'dnd' }))).toBeNull();
  });

  it('with only mentions, a plain message is silent and a mention is not', () => {
    const all = { [GUILD]: settings({ message_notifications: Level.Mentions }) };
    expect(shouldNotify(situation(all))).toBeNull();
    expect(shouldNotify(situation(all, { mention_roles: ['r1'] }))).toBe('role_mention');
    expect(shouldNotify(situation(all, { mention_roles: ['other'] }))).toBeNull();
  });

  it('nothing means nothing, mentions included', () => {
    const all = { [GUILD]: settings({ message_notifications: Level.Nothing }) };
    expect(shouldNotify(situation(all, { mentions: MENTIONS_ME }))).toBeNull();
  });

  it('a muted channel tells of mentions only, as pushes do', () => {
    const all = {
      [GUILD]: settings({
        channel_overrides: [{ channel_id: CHANNEL.id, message_notifications: Level.Inherit, muted: true }],
      }),
    };
    expect(shouldNotify(situation(all))).toBeNull();
    expect(shouldNotify(situation(all, { mentions: MENTIONS_ME }))).toBe('mention');
    expect(applied(all, CHANNEL, 3, NOW).channelMuted).toBe(true);
  });

  it('a mute that has ended no longer silences', () => {
    const ended = { end_time: new Date(NOW - 1000).toISOString() };
    const all = { [GUILD]: settings({ muted: true, mute_config: ended }) };
    expect(shouldNotify(situation(all))).toBe('all_messages');
    expect(guildMuted(all, GUILD, NOW)).toBe(false);
    const running = { [GUILD]: settings({ muted: true, mute_config: muteConfig(15, NOW) }) };
    expect(shouldNotify(situation(running))).toBeNull();
    expect(guildMuted(running, GUILD, NOW)).toBe(true);
    expect(guildMuted(running, GUILD, NOW + 16 * 60_000)).toBe(false);
  });

  it('suppressing @everyone and roles makes them not count as mentions', () => {
    const all = {
      [GUILD]: settings({
        message_notifications: Level.Mentions,
        suppress_everyone: true,
        suppress_roles: true,
      }),
    };
    expect(shouldNotify(situation(all, { mention_everyone: true }))).toBeNull();
    expect(shouldNotify(situation(all, { mention_roles: ['r1'] }))).toBeNull();
    expect(shouldNotify(situation(all, { mention_everyone: true, mentions: MENTIONS_ME }))).toBe('mention');
    expect(shouldNotify(situation({}, { mention_everyone: true }))).toBe('everyone');
  });

  it('a channel override wins over the server; "follow the server" does not', () => {
    const all = {
      [GUILD]: settings({
        message_notifications: Level.Nothing,
        channel_overrides: [{ channel_id: CHANNEL.id, message_notifications: Level.All, muted: false }],
      }),
    };
    expect(shouldNotify(situation(all))).toBe('all_messages');
  });

  it('DMs always notify unless muted, and a muted DM tells nothing, mentions included', () => {
    expect(shouldNotify(situation({}, {}, { channel: DM }))).toBe('direct');
    const muted = {
      '@me': settings({ channel_overrides: [{ channel_id: DM.id, muted: true }] }, null),
    };
    const s = situation(muted, { mentions: MENTIONS_ME }, { channel: DM });
    expect(shouldNotify({ ...s, settings: applied(muted, DM, 0, NOW) })).toBeNull();
  });

  it('a large group channel is told as a server is: only mentions, unless its own override says all', () => {
    const group = { ...DM, kind: 'group' as const };
    const big = applied({}, group, 251, NOW);
    expect(big.asServer).toBe(true);
    expect(shouldNotify({ ...situation({}, {}, { channel: group }), settings: big })).toBeNull();
    expect(
      shouldNotify({ ...situation({}, { mentions: MENTIONS_ME }, { channel: group }), settings: big }),
    ).toBe('mention');
    // "All messages" for DMs at large does not reach a large group; the channel's own does.
    const dmsAll = { '@me': settings({ message_notifications: Level.All }, null) };
    expect(applied(dmsAll, group, 251, NOW).level).toBe(Level.Mentions);
    const groupAll = {
      '@me': settings(
        { channel_overrides: [{ channel_id: group.id, message_notifications: Level.All }] },
        null,
      ),
    };
    const chosen = applied(groupAll, group, 251, NOW);
    expect(shouldNotify({ ...situation({}, {}, { channel: group }), settings: chosen })).toBe('all_messages');
    // A small group is a DM's kind of place: every message.
    expect(applied({}, group, 250, NOW).asServer).toBe(false);
  });

  it('a large server defaults to only mentions', () => {
    const big = applied({}, CHANNEL, 251, NOW);
    expect(shouldNotify({ ...situation({}), settings: big })).toBeNull();
    expect(shouldNotify({ ...situation({}, { mentions: MENTIONS_ME }), settings: big })).toBe('mention');
  });
});

describe('muteActive', () => {
  it('is on without an end, until the end, and off once it passed or when not muted', () => {
    expect(muteActive(true, null, NOW)).toBe(true);
    expect(muteActive(true, { end_time: null }, NOW)).toBe(true);
    expect(muteActive(true, muteConfig(60, NOW), NOW + 59 * 60_000)).toBe(true);
    expect(muteActive(true, muteConfig(60, NOW), NOW + 61 * 60_000)).toBe(false);
    expect(muteActive(false, null, NOW)).toBe(false);
  });
});
