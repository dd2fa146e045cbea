// @vitest-environment jsdom
import { QueryClient } from '@tanstack/react-query';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Channel, Message, Ready, User } from '../api/types';
import { session } from '../auth/session';
import { GatewayClient, RequestError, type GatewayEvents } from '../gateway/client';
import { keys } from './keys';
import type { MessageList } from './messageList';
import { Chat } from './store';

const user = (id: string, username: string): User => ({
  id,
  username,
  display_name: null,
  avatar_url: null,
  bio: null,
  status: 'online',
});
const ME = user('1', 'ann');
const BOB = user('2', 'bob');
const channel = (id: string, extra: Partial<Channel> = {}): Channel => ({
  id,
  kind: 'group',
  name: `c${id}`,
  topic: null,
  owner_id: '1',
  member_count: 2,
  role: 'owner',
  last_message_id: null,
  last_read_id: null,
  unread_count: 0,
  ...extra,
});
const msg = (id: string, channel_id: string, author_id = '2'): Message => ({
  id,
  channel_id,
  author_id,
  content: `m${id}`,
});

/** A gateway client whose events the test emits by hand. */
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
}

let qc: QueryClient;
let gw: FakeGateway;
let chat: Chat;
let fetchMock: ReturnType<typeof vi.fn>;

const ready = (channels: Channel[]): Ready => ({
  v: 1,
  session_id: 's',
  seq: 1,
  user: ME,
  channels,
  presences: [],
});
const dispatch = (t: string, d: unknown, s: number | null = null) => gw.fire('dispatch', { t, d, s });
const channels = () => qc.getQueryData<Channel[]>(keys.channels)!;
const list = (id: string) => qc.getQueryData<MessageList>(keys.messages(id));
/** The URLs fetched whose path contains `part` (READY also asks for the people I block). */
const fetched = (part: string) =>
  fetchMock.mock.calls.map((c) => String(c[0])).filter((u) => u.includes(part));

beforeEach(() => {
  session.signedIn({
    access_token: 'a',
    token_type: 'Bearer',
    expires_in: 900,
    refresh_token: 'r',
    refresh_expires_in: 1000,
    user: ME,
  });
  fetchMock = vi.fn(async () => new Response(JSON.stringify({ messages: [], authors: [] }), { status: 200 }));
  vi.stubGlobal('fetch', fetchMock);
  qc = new QueryClient();
  gw = new FakeGateway();
  chat = new Chat(qc, ME, gw);
});

afterEach(() => {
  chat.stop();
  vi.unstubAllGlobals();
});

describe('the channel list', () => {
  it('comes from READY with its unread counts', () => {
    gw.fire('ready', ready([channel('10', { unread_count: 3 })]));
    expect(channels()[0].unread_count).toBe(3);
  });

  it('counts messages from others in channels that are not open, and not my own', () => {
    gw.fire('ready', ready([channel('10'), channel('11')]));
    chat.setActive('11');
    dispatch('MESSAGE_CREATE', msg('100', '10'), 5);
    dispatch('MESSAGE_CREATE', msg('101', '10'), 6);
    dispatch('MESSAGE_CREATE', msg('101', '10'), 6); // the same one again: counted once
    expect(channels().find((c) => c.id === '10')!.unread_count).toBe(2);
    dispatch('MESSAGE_CREATE', msg('102', '10', '1'), 7);
    dispatch('MESSAGE_CREATE', msg('103', '11'), 8);
    expect(channels().find((c) => c.id === '10')!.unread_count).toBe(0); // my own reply reads it
    expect(channels().find((c) => c.id === '11')!.unread_count).toBe(0); // open
  });

  it('clears a badge when my other device reads the channel', () => {
    gw.fire('ready', ready([channel('10', { unread_count: 2, last_message_id: '100' })]));
    dispatch('MESSAGE_ACK', { channel_id: '10', user_id: '1', message_id: '100' });
    expect(channels()[0].unread_count).toBe(0);
  });

  it('counts unread mentions of me from READY and live, and clears them when I read', () => {
    gw.fire('ready', ready([channel('10', { unread_count: 1, mention_count: 1, last_message_id: '100' })]));
    expect(channels()[0].mention_count).toBe(1);
    dispatch('MESSAGE_CREATE', { ...msg('101', '10'), mentions: [{ id: '1', username: 'me' }] }, 5);
    dispatch('MESSAGE_CREATE', { ...msg('102', '10'), mention_everyone: true }, 6);
    // A message from before, its mentions bare ids, still reads.
    dispatch('MESSAGE_CREATE', { ...msg('103', '10'), mentions: ['7'] }, 7);
    expect(channels()[0]).toMatchObject({ unread_count: 4, mention_count: 3 });
    dispatch('MESSAGE_ACK', { channel_id: '10', user_id: '1', message_id: '103' });
    expect(channels()[0]).toMatchObject({ unread_count: 0, mention_count: 0 });
  });

  it("keeps another member's read marker as a receipt", () => {
    gw.fire('ready', ready([channel('10')]));
    dispatch('MESSAGE_ACK', { channel_id: '10', user_id: '2', message_id: '100' });
    dispatch('MESSAGE_ACK', { channel_id: '10', user_id: '2', message_id: '90' }); // never back
    expect(qc.getQueryData(keys.receipts('10'))).toEqual({ '2': '100' });
  });

  it('drops a channel I was removed from, and follows renames', () => {
    gw.fire('ready', ready([channel('10'), channel('11')]));
    dispatch('CHANNEL_UPDATE', channel('11', { name: 'renamed' }));
    dispatch('CHANNEL_MEMBER_REMOVE', { channel_id: '10', user_id: '1' });
    expect(channels().map((c) => c.name)).toEqual(['renamed']);
    // I left it (on another device): nothing to tell.
    expect(qc.getQueryData(keys.notice)).toBeUndefined();
  });

  it('tells me who removed me from a group channel, and that one was deleted', async () => {
    gw.fire('ready', ready([channel('10', { name: 'walks' }), channel('11', { name: 'books' })]));
    qc.setQueryData(keys.users, { '2': BOB });
    dispatch('CHANNEL_MEMBER_REMOVE', { channel_id: '10', user_id: '1', removed_by: '2' });
    await vi.waitFor(() =>
      expect(qc.getQueryData<{ text: string }>(keys.notice)?.text).toBe(
        'You were removed from #walks by bob.',
      ),
    );
    dispatch('CHANNEL_DELETE', { channel_id: '11' });
    expect(qc.getQueryData<{ text: string }>(keys.notice)?.text).toBe('#books was deleted by its owner.');
    expect(channels()).toEqual([]);
  });

  it('names a remover I never met, asking auth who they are', async () => {
    gw.fire('ready', ready([channel('10', { name: 'walks' })]));
    fetchMock.mockImplementation(async (url: string) =>
      url.endsWith('/api/v1/users/3')
        ? new Response(JSON.stringify({ ...BOB, id: '3', username: 'ann', display_name: 'Ann' }), {
            status: 200,
          })
        : new Response(JSON.stringify([]), { status: 200 }),
    );
    dispatch('CHANNEL_MEMBER_REMOVE', { channel_id: '10', user_id: '1', removed_by: '3' });
    expect(channels()).toEqual([]);
    await vi.waitFor(() =>
      expect(qc.getQueryData<{ text: string }>(keys.notice)?.text).toBe(
        'You were removed from #walks by Ann.',
      ),
    );
  });

  it('shows who is typing until they send', () => {
    gw.fire('ready', ready([channel('10')]));
    dispatch('TYPING_START', { channel_id: '10', user_id: '2', timestamp: 1 });
    expect(Object.keys(qc.getQueryData(keys.typing('10'))!)).toEqual(['2']);
    qc.setQueryData(keys.messages('10'), { items: [], hasOlder: false, deleted: new Set() });
    dispatch('MESSAGE_CREATE', msg('100', '10'), 5);
    expect(qc.getQueryData(keys.typing('10'))).toEqual({});
  });
});

describe('messages', () => {
  it('land only in lists that are loaded, edits and deletes included', () => {
    gw.fire('ready', ready([channel('10')]));
    dispatch('MESSAGE_CREATE', msg('100', '10'), 5);
    expect(list('10')).toBeUndefined();
    qc.setQueryData(keys.messages('10'), { items: [], hasOlder: false, deleted: new Set() });
    dispatch('MESSAGE_CREATE', msg('100', '10'), 5);
    dispatch('MESSAGE_CREATE', msg('100', '10'), 5); // a replay's copy
    dispatch('MESSAGE_UPDATE', { ...msg('100', '10'), content: 'edited', edited_at: 9 }, 6);
    expect(list('10')!.items.map((m) => m.content)).toEqual(['edited']);
    dispatch('MESSAGE_DELETE', { id: '100', channel_id: '10' }, 7);
    expect(list('10')!.items).toEqual([]);
  });

  it('fill the gap after a new session with pages after the newest one held', async () => {
    qc.setQueryData(keys.messages('10'), {
      items: [{ ...msg('100', '10'), delivery: 'sent' }],
      hasOlder: false,
      deleted: new Set(),
    });
    fetchMock.mockImplementation(
      async () =>
        new Response(JSON.stringify({ messages: [msg('102', '10'), msg('101', '10')], authors: [BOB] }), {
          status: 200,
        }),
    );
    gw.fire('ready', ready([channel('10', { last_message_id: '102' })]));
    await vi.waitFor(() => expect(list('10')!.items.map((m) => m.id)).toEqual(['100', '101', '102']));
    expect(fetched('/messages')[0]).toBe('http://edge:8080/api/v1/channels/10/messages?after=100&limit=100');
  });

  it('name an author never met, asking auth once however many of their messages arrive', async () => {
    gw.fire('ready', ready([channel('10')]));
    qc.setQueryData(keys.messages('10'), { items: [], hasOlder: false, deleted: new Set() });
    fetchMock.mockImplementation(async (url: string) =>
      url.endsWith('/api/v1/users/3')
        ? new Response(JSON.stringify({ ...BOB, id: '3', username: 'ann', display_name: 'Ann' }), {
            status: 200,
          })
        : new Response(JSON.stringify([]), { status: 200 }),
    );
    dispatch('MESSAGE_CREATE', msg('100', '10', '3'), 5);
    dispatch('MESSAGE_CREATE', msg('101', '10', '3'), 6);
    await vi.waitFor(() =>
      expect(qc.getQueryData<Record<string, User>>(keys.users)?.['3']?.display_name).toBe('Ann'),
    );
    dispatch('MESSAGE_CREATE', msg('102', '10', '3'), 7);
    expect(fetched('/api/v1/users/3')).toHaveLength(1);
  });

  it('ask nothing for a channel whose newest message is already held', () => {
    qc.setQueryData(keys.messages('10'), {
      items: [{ ...msg('100', '10'), delivery: 'sent' }],
      hasOlder: false,
      deleted: new Set(),
    });
    gw.fire('ready', ready([channel('10', { last_message_id: '100' })]));
    expect(fetched('/messages')).toEqual([]);
  });
});

describe('presence', () => {
  const withPresence = (presences: Ready['presences']) => ({ ...ready([channel('10')]), presences });

  it('takes READY presences and live updates, and knows the edges speak it', () => {
    gw.fire('ready', withPresence([{ user_id: '2', status: 'online', last_seen: null }]));
    expect(chat.presenceSupported).toBe(true);
    dispatch('PRESENCE_UPDATE', { user_id: '2', status: 'offline', last_seen: 5 });
    expect(qc.getQueryData(keys.presence)).toEqual({ '2': 'offline' });
  });

  it('asks the edge for everyone shown after a resume, whose gap is not replayed', async () => {
    gw.fire('ready', withPresence([]));
    fetchMock.mockImplementation(
      async () => new Response(JSON.stringify([{ user_id: '2', status: 'idle', last_seen: null }])),
    );
    const dm = channel('10', { kind: 'dm', name: null, owner_id: null, role: undefined, recipients: [BOB] });
    gw.fire('resumed', { seq: 2, channels: [dm] });
    await vi.waitFor(() => expect(qc.getQueryData(keys.presence)).toEqual({ '2': 'idle' }));
    expect(fetched('/presences')[0]).toBe('http://edge:8080/api/v1/presences?user_ids=2');
  });

  it('goes idle after minutes without input, and back on the next key', () => {
    vi.useFakeTimers();
    const sent: unknown[] = [];
    gw.notify = (op, d) => {
      sent.push([op, d]);
      return true;
    };
    chat.start();
    gw.fire('ready', withPresence([]));
    vi.advanceTimersByTime(5 * 60_000 + 30_000);
    expect(sent).toEqual([[3, { status: 'idle' }]]);
    window.dispatchEvent(new KeyboardEvent('keydown'));
    expect(sent.at(-1)).toEqual([3, { status: 'online' }]);
    vi.useRealTimers();
  });
});

describe('presence of channels joined during the session', () => {
  it('is asked for when such a channel is opened', async () => {
    gw.fire('ready', { ...ready([channel('10')]), presences: [] });
    dispatch('CHANNEL_CREATE', channel('11', { kind: 'dm', recipients: [user('3', 'carol')] }));
    fetchMock.mockImplementation(
      async () => new Response(JSON.stringify([{ user_id: '3', status: 'online', last_seen: null }])),
    );
    chat.setActive('11');
    await vi.waitFor(() => expect(qc.getQueryData(keys.presence)).toEqual({ '3': 'online' }));
    expect(fetched('/presences').at(-1)).toContain('/api/v1/presences?user_ids=3');
  });
});

describe('a channel joined during the session', () => {
  it('shows what was said in it before it arrived as unread, and counts a live copy of it once', () => {
    gw.fire('ready', { ...ready([channel('10')]), presences: [] });
    dispatch(
      'CHANNEL_CREATE',
      channel('11', { kind: 'dm', recipients: [BOB], unread_count: 1, last_message_id: '500' }),
    );
    const dm = () => qc.getQueryData<Channel[]>(keys.channels)?.find((c) => c.id === '11');
    expect(dm()).toMatchObject({ unread_count: 1, last_message_id: '500', last_read_id: null });
    dispatch('MESSAGE_CREATE', msg('500', '11'));
    expect(dm()?.unread_count).toBe(1);
    dispatch('MESSAGE_CREATE', msg('501', '11'));
    expect(dm()?.unread_count).toBe(2);
  });
});

describe('a profile status change', () => {
  it("moves an online co-member's dot at once, and never brings back someone offline", () => {
    gw.fire('ready', {
      ...ready([channel('10')]),
      presences: [
        { user_id: '2', status: 'online', last_seen: null },
        { user_id: '3', status: 'offline', last_seen: 1 },
      ],
    });
    dispatch('USER_UPDATE', { ...BOB, status: 'dnd' });
    dispatch('USER_UPDATE', { ...user('3', 'carol'), status: 'idle' });
    expect(qc.getQueryData(keys.presence)).toEqual({ '2': 'dnd', '3': 'offline' });
  });
});

describe('sending', () => {
  /**
   * The edge's limit as it is by default: a burst of five, then one more message a second
   * (5 per 5 s per channel); a refused send is answered with ERROR `rate_limited`.
   */
  function rateLimitedServer() {
    const stored: string[] = [];
    let tokens = 5;
    let refilled = Date.now();
    gw.request = (async (_op: number, d: { channel_id: string; content: string; nonce: string }) => {
      await new Promise((r) => setTimeout(r, 20)); // the round trip
      const now = Date.now();
      const gained = Math.floor((now - refilled) / 1000);
      if (gained > 0) {
        tokens = Math.min(5, tokens + gained);
        refilled += gained * 1000;
      }
      if (tokens === 0) throw new RequestError('rate_limited', 'slow down');
      tokens--;
      stored.push(d.content);
      const message = {
        id: String(1000 + stored.length),
        channel_id: d.channel_id,
        author_id: '1',
        content: d.content,
      };
      return { nonce: d.nonce, message };
    }) as typeof gw.request;
    return stored;
  }

  it('stores eight messages typed 150 ms apart in the order typed, and says to slow down meanwhile', async () => {
    vi.useFakeTimers();
    gw.fire('ready', ready([channel('10')]));
    qc.setQueryData(keys.messages('10'), { items: [], hasOlder: false, deleted: new Set() });
    const stored = rateLimitedServer();
    const typed = Array.from({ length: 8 }, (_, i) => `m${i + 1}`);
    let slowedDown = false;
    for (const text of typed) {
      chat.send('10', text);
      await vi.advanceTimersByTimeAsync(150);
      slowedDown ||= qc.getQueryData(keys.slowDown('10')) === true;
    }
    await vi.advanceTimersByTimeAsync(30_000);
    expect(stored).toEqual(typed);
    expect(list('10')!.items.map((m) => [m.content, m.delivery])).toEqual(typed.map((t) => [t, 'sent']));
    expect(slowedDown).toBe(true);
    expect(qc.getQueryData(keys.slowDown('10'))).toBe(false);
    vi.useRealTimers();
  });
});

describe('desktop notifications', () => {
  const notes: string[] = [];
  beforeEach(() => {
    notes.length = 0;
    vi.stubGlobal(
      'Notification',
      class {
        static permission = 'granted';
        constructor(title: string) {
          notes.push(title);
        }
      },
    );
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
  });
  afterEach(() => {
    delete (document as { visibilityState?: unknown }).visibilityState;
  });
  const dm = channel('20', { kind: 'dm', name: null, recipients: [BOB] });

  it('come for a DM to a hidden tab', () => {
    gw.fire('ready', ready([dm]));
    dispatch('MESSAGE_CREATE', msg('200', '20'), 5);
    expect(notes).toHaveLength(1);
  });

  it('never come while my status is Do Not Disturb', () => {
    gw.fire('ready', { ...ready([dm]), user: { ...ME, status: 'dnd' } });
    dispatch('MESSAGE_CREATE', msg('200', '20'), 5);
    expect(notes).toEqual([]);
    // Set on another device: USER_UPDATE says so.
    dispatch('USER_UPDATE', { ...ME, status: 'online' });
    dispatch('MESSAGE_CREATE', msg('201', '20'), 6);
    expect(notes).toHaveLength(1);
    dispatch('USER_UPDATE', { ...ME, status: 'dnd' });
    dispatch('MESSAGE_CREATE', msg('202', '20'), 7);
    expect(notes).toHaveLength(1);
  });

  it('follow my settings, from READY and as another device changes them', () => {
    gw.fire('ready', { ...ready([dm]), user_guild_settings: [] });
    dispatch('MESSAGE_CREATE', msg('200', '20'), 5);
    expect(notes).toHaveLength(1);
    // Muted on my phone: USER_GUILD_SETTINGS_UPDATE reaches this tab, and the DM goes quiet.
    dispatch('USER_GUILD_SETTINGS_UPDATE', {
      guild_id: null,
      message_notifications: 0,
      muted: false,
      suppress_everyone: false,
      suppress_roles: false,
      channel_overrides: [{ channel_id: '20', message_notifications: 3, muted: true, mute_config: null }],
    });
    dispatch('MESSAGE_CREATE', msg('201', '20'), 6);
    expect(notes).toHaveLength(1);
    expect(chat.notifications.appliedTo(dm).channelMuted).toBe(true);
  });

  it('never come for the channel I am looking at in a visible tab, nor with a visible tab at all', () => {
    gw.fire('ready', ready([dm]));
    delete (document as { visibilityState?: unknown }).visibilityState;
    dispatch('MESSAGE_CREATE', msg('200', '20'), 5);
    expect(notes).toEqual([]);
  });

  it('can be turned off on this device', () => {
    gw.fire('ready', ready([dm]));
    chat.notifications.setPrefs({ desktop: false });
    dispatch('MESSAGE_CREATE', msg('200', '20'), 5);
    expect(notes).toEqual([]);
    chat.notifications.setPrefs({ desktop: true });
  });
});

describe('members', () => {
  const member = (u: User, role: 'owner' | 'member' = 'member') => ({ user: u, role });
  const CAROL = user('3', 'carol');

  it('load a page when asked, and membership events keep the loaded list and the count current', async () => {
    gw.fire('ready', ready([channel('10')]));
    fetchMock.mockImplementation(async (url: string) =>
      String(url).includes('/members')
        ? new Response(JSON.stringify([member(ME, 'owner'), member(BOB)]))
        : new Response('[]'),
    );
    await chat.loadMembers('10');
    expect(fetched('/members')).toEqual(['/api/v1/channels/10/members?limit=100']);
    const page = () => qc.getQueryData<{ members: { user: User }[]; complete: boolean }>(keys.members('10'))!;
    expect(page().members.map((m) => m.user.username)).toEqual(['ann', 'bob']);
    expect(page().complete).toBe(true);
    dispatch('CHANNEL_MEMBER_ADD', { channel_id: '10', member: member(CAROL) });
    dispatch('CHANNEL_MEMBER_REMOVE', { channel_id: '10', user_id: '2' });
    expect(page().members.map((m) => m.user.username)).toEqual(['ann', 'carol']);
    expect(channels()[0].member_count).toBe(2);
    dispatch('CHANNEL_MODERATOR_ADD', { channel_id: '10', user_id: '3' });
    expect(page().members[1]).toEqual({ user: CAROL, role: 'moderator' });
  });

  it('count someone I add or remove once, whether the event comes before or after the answer', async () => {
    gw.fire('ready', ready([channel('10', { member_count: 2 })]));
    fetchMock.mockImplementation(async () => new Response(JSON.stringify(member(CAROL))));
    await chat.addMember('10', 'carol');
    dispatch('CHANNEL_MEMBER_ADD', { channel_id: '10', member: member(CAROL) });
    expect(channels()[0].member_count).toBe(3);
    fetchMock.mockImplementation(async () => new Response(null, { status: 204 }));
    dispatch('CHANNEL_MEMBER_REMOVE', { channel_id: '10', user_id: '3' });
    await chat.removeMember('10', CAROL);
    expect(channels()[0].member_count).toBe(2);
    expect(fetched('/api/v1/channels/10').filter((u) => u.endsWith('/10'))).toEqual([]);
  });

  it('a DM someone else opened with me is opened on my side when I look at it', async () => {
    const request = channel('11', {
      kind: 'dm',
      name: null,
      owner_id: null,
      role: undefined,
      recipients: [BOB],
      opened: false,
    });
    gw.fire('ready', ready([request]));
    fetchMock.mockImplementation(async () => new Response(JSON.stringify({ ...request, opened: true })));
    chat.setActive('11');
    await vi.waitFor(() => expect(channels()[0].opened).toBe(true));
    const [url, init] = fetchMock.mock.calls.find((c) => String(c[0]).includes('/dms'))!;
    expect(url).toBe('/api/v1/users/@me/dms');
    expect(JSON.parse(String((init as RequestInit).body))).toEqual({ username: 'bob' });
  });
});

describe('blocks', () => {
  it('come with each new session and follow RELATIONSHIP_ADD and RELATIONSHIP_REMOVE', async () => {
    fetchMock.mockImplementation(async (url: string) =>
      String(url).includes('/relationships')
        ? new Response(JSON.stringify([{ id: '2', type: 2, user: BOB }]))
        : new Response('[]'),
    );
    gw.fire('ready', ready([channel('10')]));
    await vi.waitFor(() => expect(qc.getQueryData(keys.blocked)).toEqual({ '2': BOB }));
    const carol = user('3', 'carol');
    dispatch('PRESENCE_UPDATE', { user_id: '3', status: 'dnd', last_seen: null });
    dispatch('RELATIONSHIP_ADD', { id: '3', type: 2, user: carol });
    dispatch('RELATIONSHIP_REMOVE', { id: '2', type: 2 });
    expect(qc.getQueryData(keys.blocked)).toEqual({ '3': carol });
    // Presence stops either way: what was last shown is not kept.
    expect(qc.getQueryData(keys.presence)).toEqual({});
  });
});
