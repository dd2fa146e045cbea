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
};
