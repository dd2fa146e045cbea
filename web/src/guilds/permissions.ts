// Permissions in a server, as the client computes them for itself: the same rules, in the same
// order, as the server's one function (`proto::permissions::effective`), ported step for step.
// `permissions.test.ts` checks this port against cases the Rust function answered
// (`permissions.cases.json`, written by `shared/proto/tests/permission_cases.rs`).
//
// The client uses it only to show what the user may do (a composer greyed out, a settings tab
// hidden); the server decides, and refuses whatever this gets wrong.
//
// Sets are BigInts: the set is 64 bits (MODERATE_MEMBERS is bit 40), beyond a JavaScript number's
// exact integers; on the wire they are decimal strings, as on Discord.

import type { Channel, GuildMember, Overwrite, Role } from './types';

/** Discord's names and bit positions (docs/API.md, "Servers"). */
export const Permission = {
  CREATE_INSTANT_INVITE: 1n << 0n,
  KICK_MEMBERS: 1n << 1n,
  BAN_MEMBERS: 1n << 2n,
  ADMINISTRATOR: 1n << 3n,
  MANAGE_CHANNELS: 1n << 4n,
  MANAGE_GUILD: 1n << 5n,
  ADD_REACTIONS: 1n << 6n,
  VIEW_AUDIT_LOG: 1n << 7n,
  STREAM: 1n << 9n,
  VIEW_CHANNEL: 1n << 10n,
  SEND_MESSAGES: 1n << 11n,
  MANAGE_MESSAGES: 1n << 13n,
  EMBED_LINKS: 1n << 14n,
  ATTACH_FILES: 1n << 15n,
  READ_MESSAGE_HISTORY: 1n << 16n,
  MENTION_EVERYONE: 1n << 17n,
  CONNECT: 1n << 20n,
  SPEAK: 1n << 21n,
  MUTE_MEMBERS: 1n << 22n,
  DEAFEN_MEMBERS: 1n << 23n,
  MOVE_MEMBERS: 1n << 24n,
  CHANGE_NICKNAME: 1n << 26n,
  MANAGE_NICKNAMES: 1n << 27n,
  MANAGE_ROLES: 1n << 28n,
  MODERATE_MEMBERS: 1n << 40n,
} as const;
export type PermissionName = keyof typeof Permission;

/** Every permission Natter knows. */
export const ALL = Object.values(Permission).reduce((a, b) => a | b, 0n);
/** What a timed-out member keeps. */
export const WHILE_TIMED_OUT = Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY;

/** A set from its decimal string (unknown bits dropped, as the server reads its own). */
export function parse(raw: string | null | undefined): bigint {
  try {
    return BigInt(raw ?? '0') & ALL;
  } catch {
    return 0n;
  }
}

export const has = (set: bigint, needed: bigint) => (set & needed) === needed;

/** Who is asking, as `proto::permissions::Subject` says it. */
export interface Subject {
  guildId: string;
  userId: string;
  owner: boolean;
  everyone: bigint;
  /** Their roles other than @everyone, with their permissions. */
  roles: Array<[string, bigint]>;
  timedOut: boolean;
}

/** What `subject` may do in the server (`overwrites` null) or in a channel with these overwrites. */
export function effective(subject: Subject, overwrites: Overwrite[] | null): bigint {
  if (subject.owner) return ALL;
  const base = subject.roles.reduce((set, [, p]) => set | p, subject.everyone);
  if (has(base, Permission.ADMINISTRATOR)) return ALL;
  let set = base;
  if (overwrites) {
    const find = (id: string, type: 0 | 1) => overwrites.find((o) => o.id === id && o.type === type);
    const everyone = find(subject.guildId, 0);
    if (everyone) set = (set & ~parse(everyone.deny)) | parse(everyone.allow);
    let allow = 0n;
    let deny = 0n;
    for (const [role] of subject.roles) {
      if (role === subject.guildId) continue;
      const o = find(role, 0);
      if (o) {
        allow |= parse(o.allow);
        deny |= parse(o.deny);
      }
    }
    set = (set & ~deny) | allow;
    const member = find(subject.userId, 1);
    if (member) set = (set & ~parse(member.deny)) | parse(member.allow);
    if (!has(set, Permission.VIEW_CHANNEL)) return 0n;
    if (!has(set, Permission.SEND_MESSAGES))
      set &= ~(Permission.MENTION_EVERYONE | Permission.ATTACH_FILES | Permission.EMBED_LINKS);
    if (!has(set, Permission.CONNECT)) set &= ~(Permission.SPEAK | Permission.STREAM);
  }
  if (subject.timedOut) set &= WHILE_TIMED_OUT;
  return set;
}

/** Whether a time-out is running at `now` (Unix milliseconds). */
export function isTimedOut(member: Pick<GuildMember, 'communication_disabled_until'>, now = Date.now()) {
  return (member.communication_disabled_until ?? 0) > now;
}

/** The subject for a member of a server with these roles and owner. */
export function subjectOf(
  guild: { id: string; owner_id: string; roles: Role[] },
  member: GuildMember,
  now = Date.now(),
): Subject {
  const byId = new Map(guild.roles.map((r) => [r.id, r]));
  return {
    guildId: guild.id,
    userId: member.user.id,
    owner: guild.owner_id === member.user.id,
    everyone: parse(byId.get(guild.id)?.permissions),
    roles: member.roles.flatMap((id) => {
      const r = byId.get(id);
      return r ? [[id, parse(r.permissions)] as [string, bigint]] : [];
    }),
    timedOut: isTimedOut(member, now),
  };
}

/** What a member may do in a channel of the server (or, `channel` absent, in the server). */
export function permissionsIn(
  guild: { id: string; owner_id: string; roles: Role[] },
  member: GuildMember,
  channel?: Pick<Channel, 'permission_overwrites'>,
  now = Date.now(),
): bigint {
  return effective(subjectOf(guild, member, now), channel ? (channel.permission_overwrites ?? []) : null);
}

/** A member's rank: the position of their highest role (the owner above all: Infinity). */
export function rankOf(guild: { owner_id: string; roles: Role[] }, member: GuildMember): number {
  if (guild.owner_id === member.user.id) return Infinity;
  const positions = guild.roles.filter((r) => member.roles.includes(r.id)).map((r) => r.position);
  return Math.max(0, ...positions);
}

/** The names of a set's permissions, in bit order (for the audit log and the editor). */
export function names(set: bigint): PermissionName[] {
  return (Object.keys(Permission) as PermissionName[]).filter((n) => has(set, Permission[n]));
}
