// Servers (guilds) on the client: each server's roles, the user's own member object and the
// server's members loaded so far, in the TanStack Query cache, patched by the gateway's server
// events; and the REST actions of servers (docs/API.md, "Servers").
//
// A server's channels live with every other channel (`keys.channels`, `guild_id` set), so
// messages, unread counts and read markers work for them as for group channels and DMs; which of
// them the user may view is the edge's to say (CHANNEL_CREATE and CHANNEL_DELETE arrive live when
// a role or an overwrite changes). This module keeps what the client needs to compute its own
// permissions (`permissions.ts`): to hide what the user may not do, and say why a composer is
// closed.

import type { QueryClient } from '@tanstack/react-query';
import { putImage } from '../api/media';
import { call } from '../api/rest';
import type { User } from '../api/types';
import { keys } from '../chat/keys';
import { momentText, raiseNotice } from '../chat/notice';
import { compareIds } from '../chat/snowflake';
import type {
  AuditLog,
  Ban,
  Channel,
  Guild,
  GuildMember,
  Invite,
  InvitePreview,
  Overwrite,
  Role,
} from './types';

/** A server as the client keeps it: its channels are with the others (`keys.channels`). */
export type GuildState = Omit<Guild, 'channels'>;

/** A server's members loaded so far, in user-id order; `complete` once the last page came. */
export interface GuildMemberPage {
  members: GuildMember[];
  complete: boolean;
}

/** Members per page of `GET /guilds/{id}/members`. */
export const GUILD_MEMBER_PAGE = 1000;

export type { Notice } from '../chat/notice';

/** Why a server is gone for me (GUILD_DELETE's `removal`; absent when the edge could not say). */
export type Removal = 'left' | 'kicked' | 'banned' | 'deleted';

/** What the removed person is told. */
export function removalText(name: string, removal?: Removal): string {
  switch (removal) {
    case 'kicked':
      return `You were removed from ${name}.`;
    case 'banned':
      return `You were banned from ${name}.`;
    case 'deleted':
      return `${name} was deleted by its owner.`;
    case 'left':
      return `You left ${name}.`;
    default:
      return `You are no longer a member of ${name}.`;
  }
}

/** What the guild store needs of the chat store it lives beside. */
export interface ChannelSink {
  upsertChannel(c: Channel): void;
  removeChannel(id: string): void;
  rememberUsers(users: User[]): void;
  fetchPresences(ids: string[]): Promise<void>;
  /** Where media is (icons are uploaded there), as discovery said; null before. */
  mediaUrl(): string | null;
  /** Whether the gateway's session has had its READY or RESUMED. */
  sessionReady(): boolean;
}

/** Sent with each change that takes one (Discord's `X-Audit-Log-Reason`). */
function withReason(reason?: string): Record<string, string> | undefined {
  return reason?.trim() ? { 'x-audit-log-reason': encodeURIComponent(reason.trim()) } : undefined;
}

const strip = (g: Guild | GuildState): GuildState => {
  const { channels: _channels, ...rest } = g as Guild;
  return rest;
};

/** A server's channel as READY and RESUMED list it, with what they leave to the server. */
const inGuild = (c: Channel, g: Guild): Channel => ({
  ...c,
  guild_id: c.guild_id ?? g.id,
  member_count: c.member_count ?? g.member_count,
});

export class Guilds {
  /** Servers the user is leaving by their own hand: no notice when they go. */
  private leaving = new Set<string>();
  /**
   * Servers just gone without a reason (the edge saw my own GUILD_MEMBER_REMOVE first), by id,
   * with their names: the GUILD_DELETE from my inbox follows and says why.
   */
  private goneUnexplained = new Map<string, string>();
  /**
   * Servers joined or made over REST while no session was ready (a page opened by an invite link
   * joins while its gateway connects). The edge reads READY from auth after it follows my inbox,
   * so a READY without such a server was read before the join, and the server's GUILD_CREATE
   * follows it: READY keeps these meanwhile, or the server would vanish (and its open channel
   * close) for the moment between the two.
   */
  private beforeReady = new Map<string, Guild>();

  constructor(
    private readonly qc: QueryClient,
    private readonly me: User,
    private readonly sink: ChannelSink,
  ) {}

  // ---- gateway -------------------------------------------------------------------------------

  /** READY's or RESUMED's servers: every server as it is now. Returns their channels. */
  setAll(guilds: Guild[]): Channel[] {
    const kept = [...this.beforeReady.values()].filter((k) => !guilds.some((g) => g.id === k.id));
    this.beforeReady.clear();
    guilds = [...guilds, ...kept];
    this.qc.setQueryData<GuildState[]>(keys.guilds, guilds.map(strip));
    // Member events are not replayed after a gap: lists already loaded are loaded again.
    for (const g of guilds)
      if (this.qc.getQueryData(keys.guildMembers(g.id))) void this.loadMembers(g.id, true);
    return guilds.flatMap((g) => g.channels.map((c) => inGuild(c, g)));
  }

  /** Handles a server event; false for any other event. */
  onDispatch(t: string, d: unknown): boolean {
    switch (t) {
      case 'GUILD_CREATE': {
        const g = d as Guild;
        this.upsert(strip(g));
        for (const c of g.channels) this.sink.upsertChannel(inGuild(c, g));
        return true;
      }
      case 'GUILD_UPDATE': {
        const g = d as GuildState;
        this.patch(g.id, (x) => ({
          ...x,
          name: g.name,
          icon: g.icon,
          owner_id: g.owner_id,
          member_count: g.member_count,
        }));
        return true;
      }
      case 'GUILD_DELETE': {
        const { id, removal } = d as { id: string; removal?: Removal };
        this.removed(id, removal);
        return true;
      }
      case 'GUILD_MEMBER_ADD':
      case 'GUILD_MEMBER_UPDATE': {
        const { guild_id, member } = d as { guild_id: string; member: GuildMember };
        this.sink.rememberUsers([member.user]);
        if (member.user.id === this.me.id) {
          const g = this.guild(guild_id);
          const until = member.communication_disabled_until;
          if (g && until && until > Date.now() && until !== g.member.communication_disabled_until)
            raiseNotice(this.qc, `You were timed out in ${g.name} until ${momentText(until)}.`);
          this.patch(guild_id, (g) => ({ ...g, member }));
        }
        const added = t === 'GUILD_MEMBER_ADD';
        if (added) this.patch(guild_id, (g) => ({ ...g, member_count: g.member_count + 1 }));
        this.patchMembers(guild_id, (ms) =>
          added || ms.some((m) => m.user.id === member.user.id)
            ? [...ms.filter((m) => m.user.id !== member.user.id), member]
            : ms,
        );
        return true;
      }
      case 'GUILD_MEMBER_REMOVE': {
        const { guild_id, user } = d as { guild_id: string; user: User };
        this.patch(guild_id, (g) => ({ ...g, member_count: Math.max(0, g.member_count - 1) }));
        this.patchMembers(guild_id, (ms) => ms.filter((m) => m.user.id !== user.id));
        return true;
      }
      case 'GUILD_ROLE_CREATE':
      case 'GUILD_ROLE_UPDATE': {
        const { guild_id, role } = d as { guild_id: string; role: Role };
        this.patch(guild_id, (g) => ({ ...g, roles: [...g.roles.filter((r) => r.id !== role.id), role] }));
        return true;
      }
      case 'GUILD_ROLE_DELETE': {
        const { guild_id, role_id } = d as { guild_id: string; role_id: string };
        this.patch(guild_id, (g) => ({
          ...g,
          roles: g.roles.filter((r) => r.id !== role_id),
          member: { ...g.member, roles: g.member.roles.filter((r) => r !== role_id) },
        }));
        this.patchMembers(guild_id, (ms) =>
          ms.map((m) => ({ ...m, roles: m.roles.filter((r) => r !== role_id) })),
        );
        return true;
      }
      case 'GUILD_BAN_ADD':
      case 'GUILD_BAN_REMOVE':
        void this.qc.invalidateQueries({ queryKey: keys.guildBans((d as { guild_id: string }).guild_id) });
        return true;
      case 'INVITE_CREATE':
      case 'INVITE_DELETE':
        void this.qc.invalidateQueries({ queryKey: keys.guildInvites((d as { guild_id: string }).guild_id) });
        return true;
      case 'GUILD_AUDIT_LOG_ENTRY_CREATE':
        void this.qc.invalidateQueries({ queryKey: keys.auditLog((d as { guild_id: string }).guild_id) });
        return true;
      case 'GUILD_MEMBERS_CHUNK':
        return true; // this client pages members over REST
    }
    return false;
  }

  guild(id: string): GuildState | undefined {
    return this.qc.getQueryData<GuildState[]>(keys.guilds)?.find((g) => g.id === id);
  }

  private upsert(g: GuildState) {
    this.qc.setQueryData<GuildState[]>(keys.guilds, (old = []) =>
      old.some((x) => x.id === g.id) ? old.map((x) => (x.id === g.id ? g : x)) : [...old, g],
    );
  }

  private patch(id: string, fn: (g: GuildState) => GuildState) {
    this.qc.setQueryData<GuildState[]>(keys.guilds, (old) => old?.map((g) => (g.id === id ? fn(g) : g)));
  }

  /** The user is no longer in the server: it goes, with its channels, and they are told why. */
  private removed(id: string, removal?: Removal) {
    const g = this.guild(id);
    if (!g) {
      // Gone already: this copy may say why.
      const name = this.goneUnexplained.get(id);
      if (name !== undefined && removal) {
        this.goneUnexplained.delete(id);
        raiseNotice(this.qc, removalText(name, removal));
      }
      return;
    }
    this.qc.setQueryData<GuildState[]>(keys.guilds, (old) => old?.filter((x) => x.id !== id));
    for (const c of this.qc.getQueryData<Channel[]>(keys.channels) ?? [])
      if (c.guild_id === id) this.sink.removeChannel(c.id);
    this.qc.removeQueries({ queryKey: keys.guildMembers(id) });
    if (this.leaving.delete(id)) return;
    if (!removal) this.goneUnexplained.set(id, g.name);
    raiseNotice(this.qc, removalText(g.name, removal));
  }

  /** A profile changed (USER_UPDATE): the member lists loaded show it. */
  userUpdated(u: User) {
    for (const g of this.qc.getQueryData<GuildState[]>(keys.guilds) ?? []) {
      const page = this.qc.getQueryData<GuildMemberPage>(keys.guildMembers(g.id));
      if (page?.members.some((m) => m.user.id === u.id))
        this.patchMembers(g.id, (ms) => ms.map((m) => (m.user.id === u.id ? { ...m, user: u } : m)));
    }
  }

  private patchMembers(guildId: string, fn: (ms: GuildMember[]) => GuildMember[]) {
    this.qc.setQueryData<GuildMemberPage | null>(keys.guildMembers(guildId), (old) =>
      old ? { ...old, members: fn(old.members).sort((a, b) => compareIds(a.user.id, b.user.id)) } : old,
    );
  }

  // ---- members -------------------------------------------------------------------------------

  private loading = new Set<string>();

  /** A server's first page of members (again with `fresh`), or with `more` the next. */
  async loadMembers(guildId: string, fresh = false, more = false) {
    const held = this.qc.getQueryData<GuildMemberPage>(keys.guildMembers(guildId));
    if (this.loading.has(guildId)) return;
    if (held && !fresh && (!more || held.complete)) return;
    this.loading.add(guildId);
    try {
      const last = more ? held?.members[held.members.length - 1]?.user.id : undefined;
      const page = await call<GuildMember[]>(
        `/api/v1/guilds/${guildId}/members?limit=${GUILD_MEMBER_PAGE}${last ? `&after=${last}` : ''}`,
      );
      this.sink.rememberUsers(page.map((m) => m.user));
      this.qc.setQueryData<GuildMemberPage>(keys.guildMembers(guildId), (old) => {
        const byId = new Map((more ? (old?.members ?? []) : []).map((m) => [m.user.id, m]));
        for (const m of page) byId.set(m.user.id, m);
        const members = [...byId.values()].sort((a, b) => compareIds(a.user.id, b.user.id));
        return { members, complete: page.length < GUILD_MEMBER_PAGE };
      });
      void this.sink.fetchPresences(page.map((m) => m.user.id).filter((id) => id !== this.me.id));
    } catch {
      // The list shows what it has; opening it again asks again.
    } finally {
      this.loading.delete(guildId);
    }
  }

  // ---- actions (REST on auth; the events update every session alike) ------------------------

  async create(name: string): Promise<Guild> {
    const g = await call<Guild>('/api/v1/guilds', { method: 'POST', body: { name } });
    this.joined(g);
    return g;
  }

  preview(code: string): Promise<InvitePreview> {
    return call<InvitePreview>(`/api/v1/invites/${encodeURIComponent(code)}`);
  }

  async join(code: string): Promise<Guild> {
    const g = await call<Guild>(`/api/v1/invites/${encodeURIComponent(code)}`, { method: 'POST' });
    this.joined(g);
    return g;
  }

  /** A server I am now in, as REST answered: shown at once, its GUILD_CREATE follows. */
  private joined(g: Guild) {
    if (!this.sink.sessionReady()) this.beforeReady.set(g.id, g);
    this.onDispatch('GUILD_CREATE', g);
  }

  async leave(guildId: string) {
    this.leaving.add(guildId);
    try {
      await call(`/api/v1/users/@me/guilds/${guildId}`, { method: 'DELETE' });
    } catch (e) {
      this.leaving.delete(guildId);
      throw e;
    }
    this.removed(guildId);
  }

  async update(guildId: string, changes: { name?: string; icon?: string | null }, reason?: string) {
    const g = await call<GuildState>(`/api/v1/guilds/${guildId}`, {
      method: 'PATCH',
      body: changes,
      headers: withReason(reason),
    });
    this.onDispatch('GUILD_UPDATE', g);
  }

  /** Uploads an image as the server's icon (media squares it and sets it, as PATCH would). */
  async uploadIcon(guildId: string, image: Blob): Promise<GuildState> {
    const g = await putImage<Guild | GuildState>(
      this.sink.mediaUrl(),
      `/api/v1/guilds/${guildId}/icon`,
      image,
    );
    this.onDispatch('GUILD_UPDATE', g);
    return strip(g);
  }

  async createChannel(
    guildId: string,
    body: { name: string; kind: 'text' | 'voice' | 'category'; parent_id?: string | null; topic?: string },
  ): Promise<Channel> {
    const c = await call<Channel>(`/api/v1/guilds/${guildId}/channels`, { method: 'POST', body });
    this.sink.upsertChannel({ ...c, guild_id: guildId });
    return c;
  }

  async updateChannel(
    channelId: string,
    changes: { name?: string; topic?: string | null; rate_limit_per_user?: number },
  ) {
    const c = await call<Channel>(`/api/v1/channels/${channelId}`, { method: 'PATCH', body: changes });
    this.sink.upsertChannel(c);
  }

  async deleteChannel(channelId: string) {
    await call(`/api/v1/channels/${channelId}`, { method: 'DELETE' });
    this.sink.removeChannel(channelId);
  }

  /** New places for channels (each within its category: `parent_id`). */
  async reorderChannels(
    guildId: string,
    places: Array<{ id: string; position: number; parent_id?: string | null }>,
  ) {
    await call(`/api/v1/guilds/${guildId}/channels`, { method: 'PATCH', body: places });
  }

  async setOverwrite(channelId: string, o: Overwrite) {
    await call(`/api/v1/channels/${channelId}/permissions/${o.id}`, {
      method: 'PUT',
      body: { type: o.type, allow: o.allow, deny: o.deny },
    });
  }

  async removeOverwrite(channelId: string, id: string) {
    await call(`/api/v1/channels/${channelId}/permissions/${id}`, { method: 'DELETE' });
  }

  async createRole(
    guildId: string,
    body: { name: string; color?: number; hoist?: boolean; permissions?: string },
  ) {
    const r = await call<Role>(`/api/v1/guilds/${guildId}/roles`, { method: 'POST', body });
    this.onDispatch('GUILD_ROLE_CREATE', { guild_id: guildId, role: r });
    return r;
  }

  async updateRole(guildId: string, roleId: string, changes: Partial<Omit<Role, 'id'>>) {
    const r = await call<Role>(`/api/v1/guilds/${guildId}/roles/${roleId}`, {
      method: 'PATCH',
      body: changes,
    });
    this.onDispatch('GUILD_ROLE_UPDATE', { guild_id: guildId, role: r });
  }

  async deleteRole(guildId: string, roleId: string) {
    await call(`/api/v1/guilds/${guildId}/roles/${roleId}`, { method: 'DELETE' });
    this.onDispatch('GUILD_ROLE_DELETE', { guild_id: guildId, role_id: roleId });
  }

  async updateMember(
    guildId: string,
    userId: string,
    changes: { nick?: string | null; roles?: string[]; communication_disabled_until?: number | null },
    reason?: string,
  ) {
    const m = await call<GuildMember>(`/api/v1/guilds/${guildId}/members/${userId}`, {
      method: 'PATCH',
      body: changes,
      headers: withReason(reason),
    });
    this.onDispatch('GUILD_MEMBER_UPDATE', { guild_id: guildId, member: m });
  }

  async kick(guildId: string, userId: string, reason?: string) {
    await call(`/api/v1/guilds/${guildId}/members/${userId}`, {
      method: 'DELETE',
      headers: withReason(reason),
    });
  }

  async ban(guildId: string, userId: string, deleteMessageSeconds: number, reason?: string) {
    await call(`/api/v1/guilds/${guildId}/bans/${userId}`, {
      method: 'PUT',
      body: { delete_message_seconds: deleteMessageSeconds },
      headers: withReason(reason),
    });
  }

  async unban(guildId: string, userId: string) {
    await call(`/api/v1/guilds/${guildId}/bans/${userId}`, { method: 'DELETE' });
  }

  bans(guildId: string): Promise<Ban[]> {
    return call<Ban[]>(`/api/v1/guilds/${guildId}/bans`);
  }

  invites(guildId: string): Promise<Invite[]> {
    return call<Invite[]>(`/api/v1/guilds/${guildId}/invites`);
  }

  createInvite(guildId: string, options: { max_age?: number; max_uses?: number } = {}): Promise<Invite> {
    return call<Invite>(`/api/v1/guilds/${guildId}/invites`, { method: 'POST', body: options });
  }

  async revokeInvite(code: string) {
    await call(`/api/v1/invites/${encodeURIComponent(code)}`, { method: 'DELETE' });
  }

  auditLog(
    guildId: string,
    filter: { user_id?: string; action_type?: number; before?: string },
  ): Promise<AuditLog> {
    const q = new URLSearchParams({ limit: '50' });
    if (filter.user_id) q.set('user_id', filter.user_id);
    if (filter.action_type) q.set('action_type', String(filter.action_type));
    if (filter.before) q.set('before', filter.before);
    return call<AuditLog>(`/api/v1/guilds/${guildId}/audit-logs?${q}`);
  }
}
