// The wire contract as the browser sees it: the types generated from the Rust code
// (./generated/types.ts, from shared/proto through contract.json; never edited by hand), under the
// names the client uses. Ids are strings (Snowflakes do not fit a JavaScript number).

import type * as g from './generated/types';

export type Status = g.Status;
export type User = g.User;
/** Someone's profile card: the profile and the servers and group channels I share with them. */
export type UserProfile = g.UserProfile;
export type MemberRole = g.MemberRole;
export type Member = g.Member;
/** A channel as the client keeps it: with where its messages and my reading stand, which READY
 * adds (absent from REST answers and events). */
export type Channel = g.ReadyChannel;
export type Audience = g.Audience;
export type UserSettings = g.UserSettings;
/** A block (Discord's relationship type 2, the only kind). */
export type Relationship = g.Relationship;
export type Message = g.Message;
export type Attachment = g.Attachment;
export type Embed = g.Embed;
export type MessageCall = g.MessageCall;
/** Discord's message flag: the message shows no link previews. */
export const SUPPRESS_EMBEDS = 1 << 2;
export type Tokens = g.Tokens;
/** An error answer. Its `code` may be one a newer server added, unknown to this client: treat it
 * by its HTTP status. */
export type ErrorBody = Omit<g.ErrorBody, 'code'> & { code: string };
export type GatewayResponse = g.GatewayResponse;
export type MessagePage = g.HistoryPage;
/** A search result's message: the hit (`hit: true`) or one around it (proto::api::search). */
export type SearchMessage = Message & { hit?: boolean };
/** `GET …/messages/search` (proto::api::search::SearchResults). */
export interface SearchResults {
  total_results: number;
  messages: SearchMessage[][];
  authors: User[];
}
export type Presence = g.Presence;
export type UserGuildSettings = g.UserGuildSettings;
export type ChannelOverride = g.ChannelOverride;
export type UpdateUserGuildSettingsRequest = g.UpdateUserGuildSettingsRequest;
/** One entry of notify's mentions inbox (`GET /users/@me/mentions`, proto::api::notifications::
 * MentionEntry; notify's routes are not in the generated contract, as search's are not). */
export interface MentionEntry {
  id: string;
  channel_id: string;
  guild_id?: string | null;
  author_id: string;
  content: string;
  reason: 'mention' | 'role_mention' | 'everyone' | 'direct' | 'all_messages';
  read: boolean;
}
export type Ready = g.Ready;
export type Resumed = g.Resumed;
export type Typing = g.Typing;
export type MessageAck = g.ReadState;
export type Dispatch = g.Dispatch;
export type VoiceState = g.VoiceState;
export type VoiceServerUpdate = g.VoiceServerUpdate;

/** Opcodes (proto::gateway::Opcode). */
export const Op = {
  Dispatch: 0,
  Heartbeat: 1,
  Identify: 2,
  PresenceUpdate: 3,
  VoiceStateUpdate: 4,
  Resume: 6,
  Reconnect: 7,
  RequestChannelMembers: 8,
  InvalidSession: 9,
  Hello: 10,
  HeartbeatAck: 11,
  MessageSend: 20,
  MessageEdit: 21,
  MessageDelete: 22,
  TypingStart: 23,
  Ack: 24,
  Error: 25,
} as const;

/** One frame on the socket, as received (its payload checked by ./contract before use). */
export interface Frame {
  op: number;
  d: unknown;
  s?: number | null;
  t?: string | null;
}
