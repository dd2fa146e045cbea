// @vitest-environment jsdom
import { QueryClient } from '@tanstack/react-query';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Channel, Ready, User } from '../api/types';
import { session } from '../auth/session';
import { keys } from '../chat/keys';
import { Chat } from '../chat/store';
import { type ConnectionState, GatewayClient, type GatewayEvents } from '../gateway/client';
import { has, Permission, permissionsIn } from './permissions';
import type { GuildState, Notice } from './store';
import type { Guild, GuildMember } from './types';

const user = (id: string, username: string): User => ({
  id,
  username,
  display_name: null,
  avatar_url: null,
  bio: null,
  status: 'online',
});
const ME = user('1', 'bob');
const member = (extra: Partial<GuildMember> = {}): GuildMember => ({
  user: ME,
  roles: [],
  joined_at: 0,
  communication_disabled_until: null,
  ...extra,
});
const text = (id: string, extra: Partial<Channel> = {}): Channel => ({
  id,
  kind: 'text',
  name: `c${id}`,
  guild_id: '100',
  member_count: 2,
  position: 0,
  ...extra,
});
const guild = (channels: Channel[]): Guild => ({
  id: '100',
  name: 'Book club',
  owner_id: '9',
  member_count: 2,
  roles: [
    {
      id: '100',
      name: '@everyone',
      color: 0,
      hoist: false,
      mentionable: false,
      position: 0,
      permissions: '68608',
    },
    { id: '201', name: 'mods', color: 0, hoist: true, mentionable: false, position: 1, permissions: '0' },
  ],
  channels,
  member: member(),
});

class FakeGateway extends GatewayClient {
  constructor() {
    super({ discover: async () => ['ws://edge/gateway'], token: async () => 't' });
  }
  fire<K extends keyof GatewayEvents>(event: K, payload: GatewayEvents[K]) {
    (this as unknown as { emit: (k: K, p: GatewayEvents[K]) => void }).emit(event, payload);
  }
  override get url() {
    return 'ws://edge:8080/gateway';
  }
  /** The connection's state as the test sets it: never connected, unless it says otherwise. */
  shownState: ConnectionState = 'connecting';
  override get state(): ConnectionState {
    return this.shownState;
  }
}

let qc: QueryClient;
let gw: FakeGateway;
let chat: Chat;

const ready = (guilds: Guild[], channels: Channel[] = []): Ready => ({
  v: 1,
  session_id: 's',
  seq: 1,
  user: ME,
  channels,
  guilds,
  presences: [],
});
const dispatch = (t: string, d: unknown) => gw.fire('dispatch', { t, d, s: null });
const channelIds = () => (qc.getQueryData<Channel[]>(keys.channels) ?? []).map((c) => c.id);
const myGuild = () => qc.getQueryData<GuildState[]>(keys.guilds)?.find((g) => g.id === '100');

beforeEach(() => {
  session.signedIn({
    access_token: 'a',
    token_type: 'Bearer',
    expires_in: 900,
    refresh_token: 'r',
    refresh_expires_in: 1000,
    user: ME,
  });
  vi.stubGlobal(
    'fetch',
    vi.fn(async () => new Response(JSON.stringify({ messages: [], authors: [] }), { status: 200 })),
  );
  qc = new QueryClient();
  gw = new FakeGateway();
  chat = new Chat(qc, ME, gw);
});

afterEach(() => {
  chat.stop();
  vi.unstubAllGlobals();
});

describe('servers in the client', () => {
  it('come from READY, their channels beside the group channels and DMs', () => {
    gw.fire('ready', ready([guild([text('10')])], [{ id: '5', kind: 'group', member_count: 2, name: 'g' }]));
    expect(channelIds()).toEqual(['5', '10']);
    expect(myGuild()?.name).toBe('Book club');
    expect(myGuild()).not.toHaveProperty('channels');
  });

  it("take from READY's server what its channels leave out, and a summary as it is", () => {
    qc.setQueryData<Channel[]>(keys.channels, [text('10', { last_read_id: '7', unread_count: 3 })]);
    const lean = { id: '10', kind: 'text', name: 'c10', position: 0, unread_count: 0 } as Channel;
    gw.fire('ready', ready([{ ...guild([lean]), member_count: 40 }]));
    const [c] = qc.getQueryData<Channel[]>(keys.channels) ?? [];
    expect(c).toMatchObject({ guild_id: '100', member_count: 40, unread_count: 0 });
    // The summary says nothing is read: an id it leaves out is none, not the one known before.
    expect(c?.last_read_id).toBeNull();
    expect(c?.last_message_id).toBeNull();
  });

  it('show a channel the edge says I may now view, and drop one I may not', () => {
    gw.fire('ready', ready([guild([text('10')])]));
    dispatch('CHANNEL_CREATE', text('11', { name: 'mods-only' }));
    expect(channelIds()).toEqual(['10', '11']);
    dispatch('CHANNEL_DELETE', { channel_id: '11', guild_id: '100' });
    expect(channelIds()).toEqual(['10']);
  });

  it('follow my roles and time-out, so my permissions are computed from what is current', () => {
    gw.fire('ready', ready([guild([text('10')])]));
    const send = () =>
      has(
        permissionsIn(myGuild()!, myGuild()!.member, { permission_overwrites: [] }),
        Permission.SEND_MESSAGES,
      );
    expect(send()).toBe(true);
    dispatch('GUILD_MEMBER_UPDATE', {
      guild_id: '100',
      member: member({ roles: ['201'], communication_disabled_until: Date.now() + 60_000 }),
    });
    expect(myGuild()!.member.roles).toEqual(['201']);
    expect(send()).toBe(false);
    dispatch('GUILD_ROLE_DELETE', { guild_id: '100', role_id: '201' });
    expect(myGuild()!.member.roles).toEqual([]);
    expect(myGuild()!.roles.map((r) => r.id)).toEqual(['100']);
  });

  it('go with all their channels when I am removed, and say so', () => {
    gw.fire(
      'ready',
      ready([guild([text('10'), text('11')])], [{ id: '5', kind: 'group', member_count: 2, name: 'g' }]),
    );
    dispatch('GUILD_DELETE', { id: '100' });
    expect(myGuild()).toBeUndefined();
    expect(channelIds()).toEqual(['5']);
    expect(qc.getQueryData<Notice>(keys.notice)?.text).toMatch(/no longer a member of Book club/);
    // The copy from my inbox follows, and says why.
    dispatch('GUILD_DELETE', { id: '100', removal: 'banned' });
    expect(qc.getQueryData<Notice>(keys.notice)?.text).toBe('You were banned from Book club.');
  });

  it('tell me I was kicked, and until when I am timed out', () => {
    gw.fire('ready', ready([guild([text('10')])]));
    const until = Date.now() + 600_000;
    dispatch('GUILD_MEMBER_UPDATE', {
      guild_id: '100',
      member: { ...myGuild()!.member, communication_disabled_until: until },
    });
    expect(qc.getQueryData<Notice>(keys.notice)?.text).toMatch(/^You were timed out in Book club until /);
    dispatch('GUILD_DELETE', { id: '100', removal: 'kicked' });
    expect(qc.getQueryData<Notice>(keys.notice)?.text).toBe('You were removed from Book club.');
  });

  it('arrive whole when I join one', () => {
    gw.fire('ready', ready([]));
    dispatch('GUILD_CREATE', { ...guild([text('10')]), member_count: 3 });
    expect(myGuild()?.member_count).toBe(3);
    expect(channelIds()).toEqual(['10']);
  });

  it('stay when joined while the session connects and READY was read before the join', async () => {
    const joined = guild([text('10')]);
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response(JSON.stringify(joined), { status: 200 })),
    );
    await chat.guilds.join('aB3dE5gH9k');
    expect(channelIds()).toEqual(['10']);
    // READY, read from auth just before the join, lacks the server; its GUILD_CREATE follows.
    gw.shownState = 'ready';
    gw.fire('ready', ready([]));
    expect(myGuild()?.name).toBe('Book club');
    expect(channelIds()).toEqual(['10']);
    dispatch('GUILD_CREATE', joined);
    expect(channelIds()).toEqual(['10']);
    // Kept by that READY only: a later one without it means I am no longer in it.
    gw.fire('ready', ready([]));
    expect(myGuild()).toBeUndefined();
    expect(channelIds()).toEqual([]);
  });

  it('go when joined in a live session and a later READY lacks them', async () => {
    gw.shownState = 'ready';
    gw.fire('ready', ready([]));
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response(JSON.stringify(guild([text('10')])), { status: 200 })),
    );
    await chat.guilds.join('aB3dE5gH9k');
    expect(channelIds()).toEqual(['10']);
    // Removed while disconnected: the next session's READY is the truth.
    gw.fire('ready', ready([]));
    expect(myGuild()).toBeUndefined();
    expect(channelIds()).toEqual([]);
  });

  it("show a member's new avatar in the member list when their profile changes", () => {
    gw.fire('ready', ready([guild([text('10')])]));
    const ann = user('9', 'ann');
    qc.setQueryData(keys.guildMembers('100'), {
      members: [member({ user: ann }), member({ user: ME })],
      complete: true,
    });
    const avatar = 'http://media/avatars/9/abc.png';
    dispatch('USER_UPDATE', { ...ann, avatar_url: avatar });
    const page = qc.getQueryData<{ members: GuildMember[] }>(keys.guildMembers('100'));
    expect(page?.members.find((m) => m.user.id === '9')?.user.avatar_url).toBe(avatar);
    expect(qc.getQueryData<Record<string, User>>(keys.users)?.['9']?.avatar_url).toBe(avatar);
  });

  it('keep my own status when my profile comes as the public copy (invisible shown as offline)', () => {
    gw.fire('ready', { ...ready([guild([text('10')])]), user: { ...ME, status: 'invisible' } });
    dispatch('USER_UPDATE', { ...ME, status: 'offline', avatar_url: 'http://media/avatars/1/a.png' });
    expect(session.user?.status).toBe('invisible');
    expect(session.user?.avatar_url).toBe('http://media/avatars/1/a.png');
  });
});
