// The chat's client state: server data in the TanStack Query cache, patched by gateway events.
// This module is the only subscriber to the gateway client; views read the cache through hooks
// (chat/hooks.ts) and act through the methods here.

import type { QueryClient } from '@tanstack/react-query';
import { putImage } from '../api/media';
import { ApiError, call } from '../api/rest';
import type {
  Channel,
  Member,
  MentionEntry,
  Message,
  MessageAck,
  MessagePage,
  Presence,
  Ready,
  Relationship,
  SearchResults,
  Status,
  Typing,
  User,
  UserGuildSettings,
  UserSettings,
} from '../api/types';
import { Op, SUPPRESS_EMBEDS } from '../api/types';
import { session } from '../auth/session';
import { GatewayClient, type ConnectionState } from '../gateway/client';
import { Guilds } from '../guilds/store';
import { Notifications, notifyKeys } from '../notify/store';
import { Voice } from '../voice/store';
import { keys } from './keys';
import {
  addPending,
  applyDelete,
  applyReaction,
  clearReactions,
  type ReactionChange,
  applyEdit,
  discardPending,
  emptyList,
  firstConfirmed,
  lastConfirmed,
  markFailed,
  markRetrying,
  mergeMessages,
  mergeNewer,
  mergeOlder,
  type MessageList,
  windowAround,
} from './messageList';
import { mentionsUser } from './mentions';
import { followEdit } from '../notify/inbox';
import { raiseNotice } from './notice';
import { Outbox } from './outbox';
import { compareIds } from './snowflake';

export const PAGE = 50;
/** Older pages are larger: a reader scrolling back wants many, and each costs a request. */
export const OLDER_PAGE = 100;
const TYPING_MS = 8_000;

export type UserMap = Record<string, User>;
/** The people I block, by id. */
export type BlockedMap = Record<string, User>;
/** A channel's members loaded so far, in user-id order; `complete` once the last page came. */
export interface MemberPage {
  members: Member[];
  complete: boolean;
}
/** Members per page of `GET …/members`. */
export const MEMBER_PAGE = 100;
export type PresenceMap = Record<string, Status | 'unknown'> | null;
/** No input for this long sends `idle` (op 3), as the presence protocol asks of clients. */
export const IDLE_AFTER_MS = 5 * 60_000;
export interface Connection {
  state: ConnectionState;
  reconnecting: boolean;
}

function newNonce(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function displayName(u: User | undefined): string {
  return u ? (u.display_name ?? u.username) : 'someone';
}

/** A DM's other person. */
export function dmPeer(c: Channel): User | undefined {
  return c.kind === 'dm' ? c.recipients?.[0] : undefined;
}

/** A channel's name; a DM's is the other person's (`_meId` kept for callers of the old shape). */
export function channelTitle(c: Channel, _meId?: string): string {
  if (c.kind === 'dm') return displayName(dmPeer(c));
  return c.name ?? 'channel';
}

export class Chat {
  readonly gateway: GatewayClient;
  private active: string | null = null;
  private ackTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private acked = new Map<string, string>();
  private unsubscribe: Array<() => void> = [];
  /** Sends, one channel queue at a time, in the order written. */
  private outbox = new Outbox({
    send: async (m) => {
      const ack = await this.gateway.request<{ message: Message }>(Op.MessageSend, {
        channel_id: m.channelId,
        content: m.content,
        nonce: m.nonce,
        ...(m.replyTo ? { message_reference: { message_id: m.replyTo } } : {}),
      });
      return ack.message;
    },
    sent: (m, stored) => this.onMessage({ ...stored, nonce: m.nonce }),
    failed: (m) => {
      this.gateway.forget(m.nonce);
      this.patchList(m.channelId, (l) => markFailed(l, m.nonce));
    },
    stalled: (m) => this.patchList(m.channelId, (l) => markFailed(l, m.nonce)),
    slowDown: (channelId, waiting) => this.qc.setQueryData(keys.slowDown(channelId), waiting),
  });
  /** Whether the edges speak presence (READY carried `presences`). */
  presenceSupported = false;
  /** Servers: their roles, my member object, their members (their channels are channels). */
  readonly guilds: Guilds;
  /** Voice channels and calls: who is in them, and this tab's own call. */
  readonly voice: Voice;
  /** My notification settings, desktop notifications and their sound. */
  readonly notifications: Notifications;

  constructor(
    readonly qc: QueryClient,
    readonly me: User,
    gateway?: GatewayClient,
  ) {
    this.gateway =
      gateway ??
      new GatewayClient({
        discover: async () => {
          const g = await call<{
            url: string;
            alternatives: string[];
            media_url?: string | null;
            notify_url?: string | null;
          }>('/api/v1/gateway', { anonymous: true });
          if (g.media_url) this.mediaUrl = g.media_url;
          if (g.notify_url) this.notifications.notifyUrl = g.notify_url;
          return [g.url, ...g.alternatives];
        },
        token: (fresh) => session.accessToken(fresh),
      });
    qc.setQueryData(keys.connection, { state: 'idle', reconnecting: false } satisfies Connection);
    this.guilds = new Guilds(qc, me, {
      upsertChannel: (c) => this.upsertChannel(c),
      removeChannel: (id) => this.removeChannel(id),
      rememberUsers: (users) => this.rememberUsers(users),
      fetchPresences: (ids) => this.fetchPresences(ids),
      mediaUrl: () => this.mediaUrl,
      sessionReady: () => this.gateway.state === 'ready',
    });
    this.notifications = new Notifications(qc, me.id, {
      channel: (id) => this.channel(id),
      myRoles: (id) => this.myRoles(id),
      guildMemberCount: (id) => this.guilds.guild(id)?.member_count ?? 0,
      isBlocked: (id) => id in (this.qc.getQueryData<BlockedMap>(keys.blocked) ?? {}),
      myStatus: () => (session.user ?? this.me).status,
      authorName: (id) => displayName(this.qc.getQueryData<UserMap>(keys.users)?.[id]),
      guildName: (id) => this.guilds.guild(id)?.name,
      knowsUser: (id) => !!this.qc.getQueryData<UserMap>(keys.users)?.[id],
      rememberUsers: (users) => this.rememberUsers(users),
    });
    this.voice = new Voice(this.gateway, me.id, {
      // TURN only (a test's, or a network that allows nothing else), set in localStorage.
      iceTransportPolicy: localStorage.getItem('natter.voice.relay') === '1' ? 'relay' : undefined,
    });
    this.unsubscribe.push(
      this.gateway.on('state', (s) => qc.setQueryData(keys.connection, s)),
      this.gateway.on('ready', (r) => this.onReady(r)),
      this.gateway.on('resumed', (r) =>
        this.onResumed([...r.channels, ...this.guilds.setAll(r.guilds ?? [])]),
      ),
      this.gateway.on('dispatch', ({ t, d }) => this.onDispatch(t, d)),
      this.gateway.on('authFailed', () => session.signedOutElsewhere()),
    );
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  private static INPUT_EVENTS = ['keydown', 'pointerdown', 'pointermove', 'wheel', 'focus'] as const;

  start() {
    this.gateway.start();
    for (const e of Chat.INPUT_EVENTS) window.addEventListener(e, this.onInput, { passive: true });
    this.idleTimer = setInterval(this.checkIdle, 30_000);
  }

  stop() {
    this.voice.stop();
    this.outbox.stop();
    this.gateway.stop();
    this.unsubscribe.forEach((u) => u());
    document.removeEventListener('visibilitychange', this.onVisibility);
    for (const e of Chat.INPUT_EVENTS) window.removeEventListener(e, this.onInput);
    if (this.idleTimer) clearInterval(this.idleTimer);
  }

  /** Where media is (avatars and icons are uploaded there), as discovery said; null before. */
  mediaUrl: string | null = null;

  /** Uploads an image as the user's avatar (media squares it and sets it on the profile). */
  async uploadAvatar(image: Blob): Promise<User> {
    const u = await putImage<User>(this.mediaUrl, '/api/v1/users/@me/avatar', image);
    this.rememberUsers([u]);
    session.updateUser(u);
    return u;
  }

  /** The connected edge's HTTP origin, for the message routes it serves. */
  edgeOrigin(): string {
    const url = this.gateway.url;
    if (!url) throw new Error('not connected to an edge yet');
    const u = new URL(url);
    return `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}`;
  }

  private async edgeCall<T>(path: string, options: { method?: string; body?: unknown } = {}) {
    if (!this.gateway.url) await this.waitForEdge();
    return call<T>(path, { ...options, origin: this.edgeOrigin() });
  }

  private waitForEdge(): Promise<void> {
    return new Promise((resolve) => {
      const off = this.gateway.on('state', () => {
        if (this.gateway.url) {
          off();
          resolve();
        }
      });
    });
  }

  // ---- gateway events ----------------------------------------------------------------------

  private onReady(ready: Ready) {
    session.updateUser(ready.user);
    this.rememberUsers([ready.user]);
    if (ready.presences) {
      this.presenceSupported = true;
      this.setPresences(ready.presences);
    }
    const channels = [...ready.channels, ...this.guilds.setAll(ready.guilds ?? [])];
    this.notifications.setAll(ready.user_guild_settings ?? []);
    this.unwatched = new Set(channels.filter((c) => (c.member_count ?? 0) > 100).map((c) => c.id));
    this.setChannels(channels);
    void this.loadRelationships();
    this.reloadMembers();
    // A new session (first connect, or after INVALID_SESSION): messages stored while no session
    // was open are not replayed, so fill each loaded channel's gap from history.
    for (const c of channels) {
      const list = this.qc.getQueryData<MessageList>(keys.messages(c.id));
      const cursor = list && lastConfirmed(list)?.id;
      // Channels whose newest message this device already has need no request.
      if (cursor && c.last_message_id && compareIds(c.last_message_id, cursor) <= 0) continue;
      void this.fillGap(c.id);
    }
  }

  private setPresences(presences: Presence[]) {
    this.qc.setQueryData<PresenceMap>(keys.presence, (old) => {
      const next: Record<string, Status | 'unknown'> = { ...(old ?? {}) };
      for (const p of presences) next[p.user_id] = p.status;
      return next;
    });
  }

  private onResumed(channels: Channel[]) {
    this.unwatched = new Set(channels.filter((c) => (c.member_count ?? 0) > 100).map((c) => c.id));
    this.setChannels(channels);
    this.reloadMembers();
    void this.loadRelationships();
    if (!this.presenceSupported) return;
    // Presence changes during the gap are not replayed: ask for everyone we show, and tell the
    // new session we are still idle.
    if (this.idle) this.gateway.notify(Op.PresenceUpdate, { status: 'idle' });
    const ids = new Set([
      ...channels.flatMap((c) => (c.recipients ?? []).map((u) => u.id)),
      ...channels.flatMap((c) => this.loadedMembers(c.id).map((m) => m.user.id)),
    ]);
    ids.delete(this.me.id);
    void this.fetchPresences([...ids]);
  }

  /** Asks for the presence of people this session has none for (met mid-session). */
  private askPresenceOf(ids: string[]) {
    if (!this.presenceSupported) return;
    const known = this.qc.getQueryData<PresenceMap>(keys.presence) ?? {};
    const missing = ids.filter((id) => id !== this.me.id && !(id in known));
    if (missing.length) void this.fetchPresences(missing);
  }

  /** `GET /api/v1/presences` on the edge, 100 ids at a time. */
  async fetchPresences(ids: string[]) {
    for (let i = 0; i < ids.length; i += 100) {
      const chunk = ids.slice(i, i + 100);
      try {
        this.setPresences(await this.edgeCall<Presence[]>(`/api/v1/presences?user_ids=${chunk.join(',')}`));
      } catch {
        return; // the next PRESENCE_UPDATE or resume corrects it
      }
    }
  }

  // ---- idle ------------------------------------------------------------------------------------

  /**
   * Channels whose members' presence is not pushed to this session: joined during it (pushed from
   * the next IDENTIFY or RESUME) or over 100 members. Asked for while open instead.
   */
  private unwatched = new Set<string>();

  private refreshActivePresence() {
    if (!this.presenceSupported || !this.active || !this.unwatched.has(this.active)) return;
    const c = this.channel(this.active);
    const ids = [
      ...(c?.recipients ?? []).map((u) => u.id),
      ...this.loadedMembers(this.active).map((m) => m.user.id),
    ];
    if (ids.length) void this.fetchPresences(ids.filter((id) => id !== this.me.id));
  }

  private idle = false;
  private lastInput = Date.now();
  private idleTimer: ReturnType<typeof setInterval> | null = null;

  private onInput = () => {
    this.lastInput = Date.now();
    if (this.idle) {
      this.idle = false;
      const chosen = (session.user ?? this.me).status;
      if (this.presenceSupported && chosen !== 'offline')
        this.gateway.notify(Op.PresenceUpdate, { status: chosen });
    }
  };

  private checkIdle = () => {
    this.refreshActivePresence();
    if (this.idle || !this.presenceSupported) return;
    if ((session.user ?? this.me).status !== 'online') return; // dnd and invisible stay as chosen
    if (Date.now() - this.lastInput < IDLE_AFTER_MS) return;
    this.idle = true;
    this.gateway.notify(Op.PresenceUpdate, { status: 'idle' });
  };

  private setChannels(channels: Channel[]) {
    const old = new Map((this.qc.getQueryData<Channel[]>(keys.channels) ?? []).map((c) => [c.id, c]));
    const next = channels.map((c) => {
      // A channel with its summary says where its reading stands (an id left out is none); one
      // without (the store did not answer in time) keeps what was known.
      const summary = c.unread_count !== undefined ? c : old.get(c.id);
      return {
        ...c,
        last_message_id: summary?.last_message_id ?? null,
        last_read_id: summary?.last_read_id ?? null,
        unread_count: summary?.unread_count ?? 0,
        mention_count: summary?.mention_count ?? 0,
      };
    });
    this.qc.setQueryData(keys.channels, next);
    this.rememberUsers(channels.flatMap((c) => c.recipients ?? []));
    if (this.active) this.markRead(this.active);
  }

  private onDispatch(t: string, d: unknown) {
    if (this.guilds.onDispatch(t, d)) return;
    switch (t) {
      case 'MESSAGE_CREATE':
        return this.onMessage(d as Message);
      case 'MESSAGE_UPDATE': {
        const m = d as Message;
        this.followEditIntoInbox(m);
        return this.patchList(m.channel_id, (l) => applyEdit(l, m));
      }
      case 'MESSAGE_DELETE': {
        const { id, channel_id } = d as { id: string; channel_id: string };
        this.qc.setQueryData<MentionEntry[]>(notifyKeys.inbox, (old) => old?.filter((e) => e.id !== id));
        return this.patchList(channel_id, (l) => applyDelete(l, id));
      }
      case 'MESSAGE_REACTION_ADD':
      case 'MESSAGE_REACTION_REMOVE': {
        const r = d as ReactionChange & { channel_id: string };
        const added = t === 'MESSAGE_REACTION_ADD';
        return this.patchList(r.channel_id, (l) => applyReaction(l, r, added, this.me.id));
      }
      case 'MESSAGE_REACTION_REMOVE_ALL': {
        const { id, channel_id } = d as { id: string; channel_id: string };
        return this.patchList(channel_id, (l) => clearReactions(l, id));
      }
      case 'MESSAGE_ACK':
        return this.onAck(d as MessageAck);
      case 'CHANNEL_PINS_UPDATE': {
        const { channel_id } = d as { channel_id: string };
        return void this.qc.invalidateQueries({ queryKey: keys.pins(channel_id) });
      }
      case 'TYPING_START': {
        const ty = d as Typing;
        if (ty.user_id === this.me.id) return;
        this.qc.setQueryData<Record<string, number>>(keys.typing(ty.channel_id), (old) => ({
          ...(old ?? {}),
          [ty.user_id]: Date.now() + TYPING_MS,
        }));
        return;
      }
      case 'PRESENCE_UPDATE': {
        this.presenceSupported = true;
        this.setPresences([d as Presence]);
        return;
      }
      case 'CHANNEL_CREATE':
      case 'CHANNEL_UPDATE':
        return this.upsertChannel(d as Channel);
      case 'RELATIONSHIP_ADD': {
        const r = d as Relationship;
        this.blocked(r.user);
        return;
      }
      case 'RELATIONSHIP_REMOVE': {
        const { id } = d as { id: string };
        this.qc.setQueryData<BlockedMap>(keys.blocked, (old) => {
          const next = { ...(old ?? {}) };
          delete next[id];
          return next;
        });
        return;
      }
      case 'USER_SETTINGS_UPDATE':
        this.qc.setQueryData(keys.settings, d as UserSettings);
        return;
      case 'USER_GUILD_SETTINGS_UPDATE':
        return this.notifications.onUpdate(d as UserGuildSettings);
      case 'CHANNEL_DELETE': {
        const { channel_id } = d as { channel_id: string };
        // A group channel deleted by its owner (a server's channel may just have become hidden;
        // one I deleted myself is gone already): say so rather than let it vanish.
        const gone = this.channel(channel_id);
        if (gone?.kind === 'group')
          raiseNotice(this.qc, `#${gone.name ?? 'channel'} was deleted by its owner.`);
        return this.removeChannel(channel_id);
      }
      case 'CHANNEL_MEMBER_ADD': {
        const { channel_id, member } = d as { channel_id: string; member: Member };
        // Someone joined one of my channels (when I am added, CHANNEL_CREATE brings the channel).
        this.rememberUsers([member.user]);
        this.askPresenceOf([member.user.id]);
        this.patchMembers(channel_id, (ms) => [...ms.filter((m) => m.user.id !== member.user.id), member]);
        return this.patchChannel(channel_id, (c) => ({ ...c, member_count: (c.member_count ?? 0) + 1 }));
      }
      case 'CHANNEL_MEMBER_REMOVE': {
        const { channel_id, user_id, removed_by } = d as {
          channel_id: string;
          user_id: string;
          removed_by?: string;
        };
        if (user_id === this.me.id) {
          const gone = this.channel(channel_id);
          if (gone && removed_by) void this.toldRemoved(gone, removed_by);
          return this.removeChannel(channel_id);
        }
        this.patchMembers(channel_id, (ms) => ms.filter((m) => m.user.id !== user_id));
        return this.patchChannel(channel_id, (c) => ({
          ...c,
          member_count: Math.max(0, (c.member_count ?? 0) - 1),
        }));
      }
      case 'CHANNEL_MODERATOR_ADD':
      case 'CHANNEL_MODERATOR_REMOVE': {
        const { channel_id, user_id } = d as { channel_id: string; user_id: string };
        const role = t === 'CHANNEL_MODERATOR_ADD' ? 'moderator' : 'member';
        this.patchMembers(channel_id, (ms) => ms.map((m) => (m.user.id === user_id ? { ...m, role } : m)));
        if (user_id === this.me.id) this.patchChannel(channel_id, (c) => ({ ...c, role }));
        return;
      }
      case 'USER_UPDATE': {
        const sent = d as User;
        // My own profile also comes as the public copy everyone sharing a channel or a server
        // gets, which shows `invisible` as `offline` (a status nobody sets): my inbox's copy
        // carries the real one, in either order.
        const u: User =
          sent.id === this.me.id && sent.status === 'offline'
            ? { ...sent, status: (session.user ?? this.me).status }
            : sent;
        this.rememberUsers([u]);
        // A profile status change sets every session's status, so an online co-member's presence
        // follows it at once, even where presence is not pushed (channels joined mid-session).
        if (this.presenceSupported && u.id !== this.me.id) {
          this.qc.setQueryData<PresenceMap>(keys.presence, (old) => {
            const now = old?.[u.id];
            if (!old || now === undefined || now === 'offline' || now === 'unknown' || now === u.status)
              return old;
            return { ...old, [u.id]: u.status };
          });
        }
        if (u.id === this.me.id) session.updateUser(u);
        this.qc.setQueryData<Channel[]>(keys.channels, (old) =>
          old?.map((c) => (c.recipients?.some((r) => r.id === u.id) ? { ...c, recipients: [u] } : c)),
        );
        for (const c of this.qc.getQueryData<Channel[]>(keys.channels) ?? [])
          this.patchMembers(c.id, (ms) => ms.map((m) => (m.user.id === u.id ? { ...m, user: u } : m)));
        this.guilds.userUpdated(u);
        return;
      }
      case 'SESSION_REVOKED':
        return session.signedOutElsewhere();
    }
  }

  private onMessage(m: Message) {
    // A window opened at an older message holds no present: the message comes with its page.
    this.patchList(m.channel_id, (l) => (l.hasNewer ? l : mergeMessages(l, [m])));
    // A live message names its author by id only: one never met (a server's member no page has
    // brought yet) is asked for, or the conversation would call them "someone".
    if (
      this.qc.getQueryData(keys.messages(m.channel_id)) &&
      !this.qc.getQueryData<UserMap>(keys.users)?.[m.author_id]
    )
      void this.ensureUsers([m.author_id]);
    this.qc.setQueryData<Record<string, number>>(keys.typing(m.channel_id), (old) => {
      if (!old || !(m.author_id in old)) return old;
      const next = { ...old };
      delete next[m.author_id];
      return next;
    });
    const mine = m.author_id === this.me.id;
    const seen = this.active === m.channel_id && document.visibilityState === 'visible';
    const mentioned = mentionsUser(m, this.me.id, this.myRoles(m.channel_id));
    this.patchChannel(m.channel_id, (c) => {
      if (c.last_message_id && compareIds(c.last_message_id, m.id) >= 0) return c;
      const unread = mine || seen ? 0 : Math.min(100, (c.unread_count ?? 0) + 1);
      const mentions = mine || seen ? 0 : Math.min(100, (c.mention_count ?? 0) + (mentioned ? 1 : 0));
      return {
        ...c,
        last_message_id: m.id,
        unread_count: unread,
        mention_count: mentions,
        last_read_id: mine ? m.id : c.last_read_id,
      };
    });
    if (seen && !mine) this.markRead(m.channel_id);
    if (!mine) this.notifications.onMessage(m, seen);
    if (!mine && (mentioned || !this.channel(m.channel_id)?.guild_id)) this.notifications.inboxChanged();
  }

  /**
   * An edit follows into my @ Inbox on this device as notify makes it follow on the server: the
   * entry shows the new text, or leaves when the edit no longer mentions me; an edit that newly
   * mentions me has the list read again (notify decides, with my settings, as for a new message).
   */
  private followEditIntoInbox(m: Message) {
    if (m.author_id === this.me.id) return;
    const concernsMe =
      mentionsUser(m, this.me.id, this.myRoles(m.channel_id)) || !this.channel(m.channel_id)?.guild_id;
    let refetch = false;
    this.qc.setQueryData<MentionEntry[]>(notifyKeys.inbox, (old) => {
      const followed = followEdit(old, m, concernsMe);
      refetch = followed.refetch;
      return followed.entries;
    });
    if (refetch) this.notifications.inboxChanged();
  }

  private onAck(a: MessageAck) {
    if (a.user_id === this.me.id) {
      this.patchChannel(a.channel_id, (c) => {
        const caughtUp = !c.last_message_id || compareIds(a.message_id, c.last_message_id) >= 0;
        return {
          ...c,
          last_read_id: a.message_id,
          unread_count: caughtUp ? 0 : c.unread_count,
          mention_count: caughtUp ? 0 : c.mention_count,
        };
      });
      return;
    }
    this.qc.setQueryData<Record<string, string>>(keys.receipts(a.channel_id), (old) => {
      const prev = old?.[a.user_id];
      if (prev && compareIds(prev, a.message_id) >= 0) return old;
      return { ...(old ?? {}), [a.user_id]: a.message_id };
    });
  }

  private onVisibility = () => {
    if (document.visibilityState === 'visible' && this.active) this.markRead(this.active);
  };

  // ---- cache helpers -------------------------------------------------------------------------

  /** My roles in the server of a channel (none outside servers): what role mentions count for me. */
  myRoles(channelId: string): string[] {
    const guildId = this.channel(channelId)?.guild_id;
    return (guildId && this.guilds.guild(guildId)?.member.roles) || [];
  }

  channel(id: string): Channel | undefined {
    return this.qc.getQueryData<Channel[]>(keys.channels)?.find((c) => c.id === id);
  }

  private patchChannel(id: string, fn: (c: Channel) => Channel) {
    this.qc.setQueryData<Channel[]>(keys.channels, (old) => old?.map((c) => (c.id === id ? fn(c) : c)));
  }

  private upsertChannel(c: Channel) {
    this.rememberUsers(c.recipients ?? []);
    this.askPresenceOf((c.recipients ?? []).map((u) => u.id));
    this.qc.setQueryData<Channel[]>(keys.channels, (old = []) => {
      const prev = old.find((x) => x.id === c.id);
      if (!prev) {
        this.unwatched.add(c.id);
        // A channel I have just joined comes with where its messages and my reading stand, as
        // READY's channels do (missing when the store could not say in time).
        return [
          ...old,
          {
            ...c,
            unread_count: c.unread_count ?? 0,
            mention_count: c.mention_count ?? 0,
            last_message_id: c.last_message_id ?? null,
            last_read_id: c.last_read_id ?? null,
          },
        ];
      }
      return old.map((x) =>
        x.id === c.id
          ? {
              ...c,
              // CHANNEL_UPDATE is the view every member shares: my place in it stays, unless it
              // made me the owner.
              role: c.role ?? (c.owner_id === this.me.id ? 'owner' : x.role),
              opened: c.opened ?? x.opened,
              unread_count: x.unread_count,
              mention_count: x.mention_count,
              last_message_id: x.last_message_id,
              last_read_id: x.last_read_id,
            }
          : x,
      );
    });
  }

  private removeChannel(id: string) {
    this.qc.setQueryData<Channel[]>(keys.channels, (old) => old?.filter((c) => c.id !== id));
    this.qc.removeQueries({ queryKey: keys.messages(id) });
    this.qc.removeQueries({ queryKey: keys.members(id) });
  }

  // ---- members, blocks and privacy -----------------------------------------------------------

  private loadedMembers(channelId: string): Member[] {
    return this.qc.getQueryData<MemberPage>(keys.members(channelId))?.members ?? [];
  }

  /** Applies a membership change to the members loaded so far (none loaded: nothing to do). */
  private patchMembers(channelId: string, fn: (ms: Member[]) => Member[]) {
    this.qc.setQueryData<MemberPage | null>(keys.members(channelId), (old) => {
      if (!old) return old;
      const members = fn(old.members).sort((a, b) => compareIds(a.user.id, b.user.id));
      return { ...old, members };
    });
  }

  private membersLoading = new Set<string>();

  /** Membership events are not replayed after a gap: lists already loaded are loaded again. */
  private reloadMembers() {
    for (const c of this.qc.getQueryData<Channel[]>(keys.channels) ?? [])
      if (this.qc.getQueryData(keys.members(c.id))) void this.loadMembers(c.id, false, true);
  }

  /**
   * Loads a channel's first page of members (when the member list opens; again with `fresh`), or
   * with `more` the next page, and the presence of those not yet known.
   */
  async loadMembers(channelId: string, more = false, fresh = false) {
    const held = this.qc.getQueryData<MemberPage>(keys.members(channelId));
    if (this.membersLoading.has(channelId)) return;
    if (held && !fresh && (!more || held.complete)) return;
    this.membersLoading.add(channelId);
    try {
      const last = more ? held?.members[held.members.length - 1]?.user.id : undefined;
      const page = await call<Member[]>(
        `/api/v1/channels/${channelId}/members?limit=${MEMBER_PAGE}${last ? `&after=${last}` : ''}`,
      );
      this.rememberUsers(page.map((m) => m.user));
      this.qc.setQueryData<MemberPage>(keys.members(channelId), (old) => {
        const byId = new Map((more ? (old?.members ?? []) : []).map((m) => [m.user.id, m]));
        for (const m of page) byId.set(m.user.id, m);
        const members = [...byId.values()].sort((a, b) => compareIds(a.user.id, b.user.id));
        return { members, complete: page.length < MEMBER_PAGE };
      });
      this.askPresenceOf(page.map((m) => m.user.id));
    } catch {
      // The list shows what it has; opening it again asks again.
    } finally {
      this.membersLoading.delete(channelId);
    }
  }

  /** The people I block (at the start of each session; events keep it current after). */
  async loadRelationships() {
    try {
      const all = await call<Relationship[]>('/api/v1/users/@me/relationships');
      this.qc.setQueryData<BlockedMap>(keys.blocked, Object.fromEntries(all.map((r) => [r.id, r.user])));
    } catch {
      // Nothing hidden rather than nothing shown; the next session asks again.
    }
  }

  async block(user: User) {
    await call(`/api/v1/users/@me/relationships/${user.id}`, { method: 'PUT', body: { type: 2 } });
    this.blocked(user);
  }

  /**
   * I block `user`: their messages hide, and their presence (no longer sent either way) shows
   * offline rather than as it last was. Unblocking sends it again.
   */
  private blocked(user: User) {
    this.qc.setQueryData<BlockedMap>(keys.blocked, (old) => ({ ...(old ?? {}), [user.id]: user }));
    this.qc.setQueryData<PresenceMap>(keys.presence, (old) => {
      if (!old || !(user.id in old)) return old;
      const next = { ...old };
      delete next[user.id];
      return next;
    });
  }

  async unblock(userId: string) {
    await call(`/api/v1/users/@me/relationships/${userId}`, { method: 'DELETE' });
    this.qc.setQueryData<BlockedMap>(keys.blocked, (old) => {
      const next = { ...(old ?? {}) };
      delete next[userId];
      return next;
    });
  }

  async loadSettings(): Promise<UserSettings> {
    const settings = await call<UserSettings>('/api/v1/users/@me/settings');
    this.qc.setQueryData(keys.settings, settings);
    return settings;
  }

  async updateSettings(changes: Partial<UserSettings>): Promise<UserSettings> {
    const settings = await call<UserSettings>('/api/v1/users/@me/settings', {
      method: 'PATCH',
      body: changes,
    });
    this.qc.setQueryData(keys.settings, settings);
    return settings;
  }

  private patchList(channelId: string, fn: (l: MessageList) => MessageList) {
    const key = keys.messages(channelId);
    if (!this.qc.getQueryData(key)) {
      // An unopened channel loads its latest page when opened. One whose first page is loading
      // right now keeps what arrives meanwhile: the page is merged into it when it lands.
      if (this.qc.getQueryState(key)?.fetchStatus !== 'fetching') return;
      this.qc.setQueryData<MessageList>(key, fn(emptyList()));
      return;
    }
    this.qc.setQueryData<MessageList>(key, (l) => (l ? fn(l) : l));
  }

  /** Tells me who removed me from a group channel, by name (fetched if never met, e.g. in a list not opened). */
  private async toldRemoved(channel: Channel, removedBy: string) {
    await this.ensureUsers([removedBy]);
    const by = this.qc.getQueryData<UserMap>(keys.users)?.[removedBy];
    raiseNotice(
      this.qc,
      `You were removed from #${channel.name ?? 'channel'}${by ? ` by ${displayName(by)}` : ''}.`,
    );
  }

  /**
   * Someone by username (any case), remembered like anyone met; null when no one is called that
   * (search's `from:` and `mentions:` name people the client may never have met).
   */
  async userByName(name: string): Promise<User | null> {
    try {
      const u = await call<User>(`/api/v1/users/by-username/${encodeURIComponent(name)}`);
      this.rememberUsers([u]);
      return u;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }

  /**
   * Fetches the profiles of users the client has not met yet (people in a voice channel, a
   * moderator, a live message's author), each once however many ask at the same time.
   */
  async ensureUsers(ids: string[]) {
    const known = this.qc.getQueryData<UserMap>(keys.users) ?? {};
    const missing = [...new Set(ids)].filter((id) => !known[id]);
    await Promise.all(
      missing.map((id) => {
        let asking = this.askingUsers.get(id);
        if (!asking) {
          asking = call<User>(`/api/v1/users/${id}`)
            .then(
              (u) => this.rememberUsers([u]),
              () => undefined,
            )
            .finally(() => this.askingUsers.delete(id));
          this.askingUsers.set(id, asking);
        }
        return asking;
      }),
    );
  }

  /** Profiles being fetched, by user id. */
  private askingUsers = new Map<string, Promise<void>>();

  private rememberUsers(users: User[]) {
    if (users.length === 0) return;
    this.qc.setQueryData<UserMap>(keys.users, (old) => {
      const next = { ...(old ?? {}) };
      for (const u of users) next[u.id] = u;
      return next;
    });
  }

  // ---- history -------------------------------------------------------------------------------

  private async page(channelId: string, query: string): Promise<Message[] | null> {
    try {
      const page = await this.edgeCall<MessagePage>(`/api/v1/channels/${channelId}/messages?${query}`);
      this.rememberUsers(page.authors ?? []);
      return page.messages;
    } catch (e) {
      // Until the edge serves history (404), a channel shows what arrives live.
      if ((e as { status?: number }).status === 404) return null;
      throw e;
    }
  }

  /**
   * The query function for a channel's messages: its latest page, merged with what is held. When
   * history cannot be reached the list still exists, so live messages land in it, and it says so.
   */
  async loadLatest(channelId: string): Promise<MessageList> {
    const held = () => this.qc.getQueryData<MessageList>(keys.messages(channelId)) ?? emptyList();
    let messages: Message[] | null;
    try {
      messages = await this.page(channelId, `limit=${PAGE}`);
    } catch {
      return { ...held(), historyFailed: true };
    }
    if (messages === null) return { ...held(), hasOlder: false, historyFailed: false };
    return { ...mergeOlder(held(), messages, PAGE), historyFailed: false };
  }

  async loadOlder(channelId: string): Promise<void> {
    const list = this.qc.getQueryData<MessageList>(keys.messages(channelId));
    if (!list || !list.hasOlder) return;
    const first = firstConfirmed(list);
    let messages: Message[] | null;
    try {
      messages = await this.page(
        channelId,
        first ? `before=${first.id}&limit=${OLDER_PAGE}` : `limit=${PAGE}`,
      );
    } catch {
      this.patchList(channelId, (l) => ({ ...l, historyFailed: true }));
      return;
    }
    this.qc.setQueryData<MessageList>(keys.messages(channelId), (l) =>
      l
        ? messages === null
          ? { ...l, hasOlder: false, historyFailed: false }
          : { ...mergeOlder(l, messages, first ? OLDER_PAGE : PAGE), historyFailed: false }
        : l,
    );
  }

  /** After a new session: fetch every message after the newest one held, page by page. */
  private async fillGap(channelId: string) {
    for (let pages = 0; pages < 20; pages++) {
      const list = this.qc.getQueryData<MessageList>(keys.messages(channelId));
      if (!list) return;
      const last = lastConfirmed(list);
      if (!last) {
        void this.qc.invalidateQueries({ queryKey: keys.messages(channelId) });
        return;
      }
      let messages: Message[] | null;
      try {
        messages = await this.page(channelId, `after=${last.id}&limit=100`);
      } catch {
        return;
      }
      if (!messages || messages.length === 0) return;
      this.patchList(channelId, (l) => mergeMessages(l, messages!));
      if (messages.length < 100) return;
    }
  }

  // ---- actions -------------------------------------------------------------------------------

  setActive(channelId: string | null) {
    this.active = channelId;
    if (channelId) this.markRead(channelId);
    this.refreshActivePresence();
    // A DM someone else opened with me is a request until I open it: looking at it is opening
    // it (so they may see my presence, and it counts as mine).
    const c = channelId ? this.channel(channelId) : undefined;
    const peer = c && dmPeer(c);
    if (c && peer && c.opened === false) void this.openDm(peer.username).catch(() => {});
  }

  /** Marks the open channel read up to its newest message (debounced), if it is not already. */
  markRead(channelId: string) {
    if (document.visibilityState !== 'visible') return;
    const c = this.channel(channelId);
    if (!c) return;
    const list = this.qc.getQueryData<MessageList>(keys.messages(channelId));
    const newest = [c.last_message_id, list && lastConfirmed(list)?.id]
      .filter((x): x is string => !!x)
      .sort(compareIds)
      .pop();
    if ((c.unread_count ?? 0) > 0 || (c.mention_count ?? 0) > 0)
      this.patchChannel(channelId, (x) => ({ ...x, unread_count: 0, mention_count: 0 }));
    if (!newest) return;
    if (c.last_read_id && compareIds(c.last_read_id, newest) >= 0) return;
    if (this.acked.get(channelId) === newest) return;
    clearTimeout(this.ackTimers.get(channelId));
    this.ackTimers.set(
      channelId,
      setTimeout(() => {
        this.acked.set(channelId, newest);
        this.patchChannel(channelId, (x) => ({ ...x, last_read_id: newest }));
        this.edgeCall(`/api/v1/channels/${channelId}/messages/${newest}/ack`, { method: 'POST' }).catch(() =>
          this.acked.delete(channelId),
        );
      }, 300),
    );
  }

  /** Sends a message; `replyTo`, a message of the channel it answers. */
  send(channelId: string, content: string, replyTo?: string) {
    const nonce = newNonce();
    // What one writes goes at the present: leave a window opened at an older message.
    if (this.qc.getQueryData<MessageList>(keys.messages(channelId))?.hasNewer)
      void this.backToPresent(channelId);
    this.lastTyping.delete(channelId);
    this.qc.setQueryData<MessageList>(keys.messages(channelId), (l) =>
      addPending(l ?? emptyList(), { nonce, channel_id: channelId, author_id: this.me.id, content }),
    );
    this.outbox.push({ channelId, nonce, content, replyTo });
  }

  /** Adds (or takes back) my reaction; MESSAGE_REACTION_* then updates every session's count. */
  async react(channelId: string, messageId: string, emoji: string, add: boolean) {
    const path = `/api/v1/channels/${channelId}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}/@me`;
    await this.edgeCall(path, { method: add ? 'PUT' : 'DELETE' });
  }

  /** Pins or unpins a message; CHANNEL_PINS_UPDATE then refreshes every session's pins list. */
  async pin(channelId: string, messageId: string, pin: boolean) {
    await this.edgeCall(`/api/v1/channels/${channelId}/pins/${messageId}`, {
      method: pin ? 'PUT' : 'DELETE',
    });
    void this.qc.invalidateQueries({ queryKey: keys.pins(channelId) });
  }

  /** A channel's pinned messages, the most recently pinned first. */
  async loadPins(channelId: string): Promise<Message[]> {
    return (await this.edgeCall<Message[]>(`/api/v1/channels/${channelId}/pins`)) ?? [];
  }

  /**
   * Loads older pages until `messageId` (a reply's original, a pin) is in the channel's list, at
   * most ten pages; answers whether it is. (The list stays one unbroken run of history.)
   */
  async reveal(channelId: string, messageId: string): Promise<boolean> {
    const has = () =>
      this.qc.getQueryData<MessageList>(keys.messages(channelId))?.items.some((m) => m.id === messageId) ??
      false;
    for (let i = 0; i < 10 && !has(); i++) {
      const list = this.qc.getQueryData<MessageList>(keys.messages(channelId));
      if (!list?.hasOlder || list.historyFailed) break;
      await this.loadOlder(channelId);
    }
    return has();
  }

  /**
   * Opens the channel's list at `messageId` (a search hit, a reply's original, a notification):
   * if it is not held and not within three older pages, the list becomes the window of history
   * around it (`around=`), paged up and down from there (`loadOlder`, `loadNewer`) until
   * `backToPresent`. Answers whether the message is in the list now.
   */
  async openAt(channelId: string, messageId: string): Promise<boolean> {
    const has = () =>
      this.qc.getQueryData<MessageList>(keys.messages(channelId))?.items.some((m) => m.id === messageId) ??
      false;
    const list = this.qc.getQueryData<MessageList>(keys.messages(channelId));
    if (!list)
      await this.qc.fetchQuery({
        queryKey: keys.messages(channelId),
        queryFn: () => this.loadLatest(channelId),
      });
    for (let i = 0; i < 3 && !has(); i++) {
      const l = this.qc.getQueryData<MessageList>(keys.messages(channelId));
      if (!l?.hasOlder || l.historyFailed) break;
      await this.loadOlder(channelId);
    }
    if (has()) return true;
    let page: Message[] | null;
    try {
      page = await this.page(channelId, `around=${messageId}&limit=${PAGE}`);
    } catch {
      return false;
    }
    if (!page || !page.some((m) => m.id === messageId)) return false;
    this.qc.setQueryData<MessageList>(keys.messages(channelId), (l) =>
      windowAround(l ?? emptyList(), page!, PAGE, messageId),
    );
    return true;
  }

  /** The page after the newest message of a window opened at an older message. */
  async loadNewer(channelId: string): Promise<void> {
    const list = this.qc.getQueryData<MessageList>(keys.messages(channelId));
    if (!list?.hasNewer) return;
    const last = lastConfirmed(list);
    if (!last) return;
    let messages: Message[] | null;
    try {
      messages = await this.page(channelId, `after=${last.id}&limit=${OLDER_PAGE}`);
    } catch {
      return;
    }
    this.qc.setQueryData<MessageList>(keys.messages(channelId), (l) =>
      l ? mergeNewer(l, messages ?? [], messages === null ? Infinity : OLDER_PAGE) : l,
    );
  }

  /** Leaves a window for the present: the channel's latest page, as when it was opened. */
  async backToPresent(channelId: string): Promise<void> {
    const list = this.qc.getQueryData<MessageList>(keys.messages(channelId));
    if (!list?.hasNewer) return;
    const pending = list.items.filter((m) => m.delivery !== 'sent');
    this.qc.setQueryData<MessageList>(keys.messages(channelId), {
      ...emptyList(),
      items: pending,
      deleted: list.deleted,
    });
    const latest = await this.loadLatest(channelId);
    this.qc.setQueryData<MessageList>(keys.messages(channelId), latest);
  }

  /**
   * Searches a server's messages (every channel I may read) or one channel's (a DM, a group):
   * `params` as `search/query.ts` makes them, a page of 25 from `offset`.
   */
  async search(
    scope: { guild: string } | { channel: string },
    params: [string, string][],
    offset: number,
  ): Promise<SearchResults> {
    const query = new URLSearchParams([...params, ['offset', String(offset)], ['limit', '25']]);
    const path =
      'guild' in scope
        ? `/api/v1/guilds/${scope.guild}/messages/search?${query}`
        : `/api/v1/channels/${scope.channel}/messages/search?${query}`;
    const results = await this.edgeCall<SearchResults>(path);
    this.rememberUsers(results.authors ?? []);
    return results;
  }

  /** A failed send, tried again: at once if it is still being sent, else behind any queued. */
  retry(channelId: string, nonce: string, content: string) {
    this.patchList(channelId, (l) => markRetrying(l, nonce));
    if (this.outbox.has(nonce)) this.outbox.retryNow(nonce);
    else this.outbox.push({ channelId, nonce, content });
  }

  discard(channelId: string, nonce: string) {
    this.outbox.drop(nonce);
    this.gateway.forget(nonce);
    this.patchList(channelId, (l) => discardPending(l, nonce));
  }

  /** Edits go to the edge's REST route; MESSAGE_UPDATE then reaches every session. */
  async edit(channelId: string, messageId: string, content: string) {
    const m = await this.edgeCall<Message>(`/api/v1/channels/${channelId}/messages/${messageId}`, {
      method: 'PATCH',
      body: { content },
    });
    if (m) this.patchList(channelId, (l) => applyEdit(l, m));
  }

  /** Removes a message's link previews for everyone (Discord's SUPPRESS_EMBEDS flag). */
  async suppressEmbeds(channelId: string, messageId: string) {
    const m = await this.edgeCall<Message>(`/api/v1/channels/${channelId}/messages/${messageId}`, {
      method: 'PATCH',
      body: { flags: SUPPRESS_EMBEDS },
    });
    if (m) this.patchList(channelId, (l) => applyEdit(l, m));
  }

  async remove(channelId: string, messageId: string) {
    await this.edgeCall(`/api/v1/channels/${channelId}/messages/${messageId}`, { method: 'DELETE' });
    this.patchList(channelId, (l) => applyDelete(l, messageId));
  }

  /** The newest confirmed message of mine in a channel (Up in the composer edits it). */
  lastOwnMessage(channelId: string): string | null {
    const items = this.qc.getQueryData<MessageList>(keys.messages(channelId))?.items ?? [];
    for (let i = items.length - 1; i >= 0; i--) {
      if (items[i].delivery === 'sent' && items[i].author_id === this.me.id) return items[i].id;
    }
    return null;
  }

  private lastTyping = new Map<string, number>();
  typing(channelId: string) {
    const now = Date.now();
    if ((this.lastTyping.get(channelId) ?? 0) + 4_000 > now) return;
    this.lastTyping.set(channelId, now);
    this.gateway.notify(Op.TypingStart, { channel_id: channelId });
  }

  setPresence(status: Exclude<Status, 'offline'>) {
    if (this.presenceSupported) this.gateway.notify(Op.PresenceUpdate, { status });
  }

  // REST actions on auth; the gateway's events update the cache for every session alike.
  async createChannel(name: string, topic?: string): Promise<Channel> {
    const c = await call<Channel>('/api/v1/channels', {
      method: 'POST',
      body: topic ? { name, topic } : { name },
    });
    this.upsertChannel(c);
    return c;
  }

  async openDm(username: string): Promise<Channel> {
    const c = await call<Channel>('/api/v1/users/@me/dms', { method: 'POST', body: { username } });
    this.upsertChannel(c);
    return c;
  }

  async addMember(channelId: string, username: string) {
    const member = await call<Member>(`/api/v1/channels/${channelId}/members`, {
      method: 'POST',
      body: { username },
    });
    this.rememberUsers([member.user]);
    // The count moves with CHANNEL_MEMBER_ADD, which comes to me too, before or after this
    // answer: a count read here as well would count the new member twice when it comes after.
    this.patchMembers(channelId, (ms) => [...ms.filter((m) => m.user.id !== member.user.id), member]);
  }

  async removeMember(channelId: string, member: User) {
    await call(`/api/v1/channels/${channelId}/members/${encodeURIComponent(member.username)}`, {
      method: 'DELETE',
    });
    // The count moves with CHANNEL_MEMBER_REMOVE, as with addMember.
    this.patchMembers(channelId, (ms) => ms.filter((m) => m.user.id !== member.id));
  }

  /** Appoints (or with `moderator` false demotes) a moderator of a group channel: its owner only. */
  async setModerator(channelId: string, member: User, moderator: boolean) {
    await call(`/api/v1/channels/${channelId}/moderators/${encodeURIComponent(member.username)}`, {
      method: moderator ? 'PUT' : 'DELETE',
    });
    const role = moderator ? 'moderator' : 'member';
    this.patchMembers(channelId, (ms) => ms.map((m) => (m.user.id === member.id ? { ...m, role } : m)));
  }

  async updateChannel(channelId: string, changes: { name?: string; topic?: string | null }) {
    const c = await call<Channel>(`/api/v1/channels/${channelId}`, { method: 'PATCH', body: changes });
    this.upsertChannel(c);
  }

  async leaveChannel(channelId: string) {
    await call(`/api/v1/channels/${channelId}/members/@me`, { method: 'DELETE' });
    this.removeChannel(channelId);
  }

  async deleteChannel(channelId: string) {
    await call(`/api/v1/channels/${channelId}`, { method: 'DELETE' });
    this.removeChannel(channelId);
  }

  async updateProfile(changes: Partial<Pick<User, 'display_name' | 'avatar_url' | 'bio' | 'status'>>) {
    const u = await call<User>('/api/v1/users/@me', { method: 'PATCH', body: changes });
    this.rememberUsers([u]);
    session.updateUser(u);
    if (changes.status && changes.status !== 'offline') this.setPresence(changes.status);
    return u;
  }
}
