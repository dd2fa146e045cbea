// The wire contract as the browser sees it: mirrors shared/src/api/*.rs and shared/src/gateway.rs.
// Ids are strings (Snowflakes do not fit a JavaScript number).

export type Status = 'online' | 'idle' | 'dnd' | 'invisible' | 'offline';

export interface User {
  id: string;
  username: string;
  display_name: string | null;
  avatar_url: string | null;
  bio: string | null;
  status: Status;
}

export type MemberRole = 'owner' | 'moderator' | 'member';

export interface Member {
  user: User;
  role: MemberRole;
}

export interface Channel {
  id: string;
  kind: 'group' | 'dm';
  name: string | null;
  topic: string | null;
  owner_id: string | null;
  /** Members are not inlined: they come in pages (`GET /api/v1/channels/{id}/members`). */
  member_count: number;
  /** DMs: the other person. */
  recipients?: User[];
  /** My role (absent on CHANNEL_UPDATE, which every member shares). */
  role?: MemberRole;
  /** DMs: whether I opened it myself; one someone else opened is a request until I do. */
  opened?: boolean;
  // In READY (history issue); absent from REST answers.
  last_message_id?: string | null;
  last_read_id?: string | null;
  unread_count?: number;
}

export type Audience = 'everyone' | 'shared' | 'nobody';

export interface UserSettings {
  allow_dms_from: Audience;
  allow_channel_adds_from: Audience;
}

/** A block (Discord's relationship type 2, the only kind). */
export interface Relationship {
  id: string;
  type: 2;
  user: User;
}

export interface Message {
  id: string;
  channel_id: string;
  author_id: string;
  content: string;
  nonce?: string | null;
  /** Unix milliseconds of the last edit. */
  edited_at?: number | null;
}

export interface Tokens {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
  user: User;
}

export interface ErrorBody {
  code: string;
  message: string;
  fields?: Record<string, string>;
}

export interface GatewayResponse {
  url: string;
  alternatives: string[];
}

export interface MessagePage {
  messages: Message[];
  authors: User[];
}

export interface Presence {
  user_id: string;
  /** `unknown` when the presence store cannot be read: show nothing rather than a guess. */
  status: Status | 'unknown';
  last_seen: number | null;
}

export interface Ready {
  v: number;
  session_id: string;
  seq: number;
  user: User;
  channels: Channel[];
  presences?: Presence[];
}

export interface Resumed {
  seq: number;
  channels: Channel[];
}

export interface Typing {
  channel_id: string;
  user_id: string;
  timestamp: number;
}

export interface MessageAck {
  channel_id: string;
  user_id: string;
  message_id: string;
}

export const Op = {
  Dispatch: 0,
  Heartbeat: 1,
  Identify: 2,
  PresenceUpdate: 3,
  Resume: 6,
  Reconnect: 7,
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

export interface Frame {
  op: number;
  d: unknown;
  s?: number | null;
  t?: string | null;
}
