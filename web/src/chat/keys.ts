// The cache's keys: every piece of server data the views read, patched by gateway events.
export const keys = {
  channels: ['channels'] as const,
  messages: (channelId: string) => ['messages', channelId] as const,
  users: ['users'] as const,
  typing: (channelId: string) => ['typing', channelId] as const,
  presence: ['presence'] as const,
  receipts: (channelId: string) => ['receipts', channelId] as const,
  /** True while the channel's sends wait because the server said slow down. */
  slowDown: (channelId: string) => ['slowDown', channelId] as const,
  connection: ['connection'] as const,
  /** A channel's members loaded so far (pages of `GET …/members`), kept current by events. */
  members: (channelId: string) => ['members', channelId] as const,
  /** The people I block, by id. */
  blocked: ['blocked'] as const,
  settings: ['settings'] as const,
  /** My servers (guilds/store.ts): roles and my member object; their channels are in `channels`. */
  guilds: ['guilds'] as const,
  guildMembers: (guildId: string) => ['guildMembers', guildId] as const,
  guildBans: (guildId: string) => ['guildBans', guildId] as const,
  guildInvites: (guildId: string) => ['guildInvites', guildId] as const,
  auditLog: (guildId: string) => ['auditLog', guildId] as const,
  /** A channel's pinned messages (`GET …/pins`), refetched on CHANNEL_PINS_UPDATE. */
  pins: (channelId: string) => ['pins', channelId] as const,
  /** Someone's profile card (`GET /users/{id}/profile`), asked for each time a card opens. */
  profile: (userId: string) => ['profile', userId] as const,
  /** Something to tell the user once (a server or channel they were removed from). */
  notice: ['notice'] as const,
};
