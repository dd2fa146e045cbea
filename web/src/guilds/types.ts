// The wire types of servers, as the client names them (generated from the Rust ones: see
// ../api/types.ts).
import type * as g from '../api/generated/types';

export type { Channel } from '../api/types';
export type Guild = g.ReadyGuild;
export type GuildMember = g.GuildMember;
export type Role = g.Role;
export type Overwrite = g.Overwrite;
export type Invite = g.Invite;
export type InvitePreview = g.InvitePreview;
export type Ban = g.Ban;
export type AuditLog = g.AuditLog;
export type AuditLogEntry = g.AuditLogEntry;
export type AuditLogEvent = g.AuditLogEvent;
