// Views read the cache through these hooks; the store's gateway handlers keep it current.
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, useContext, useEffect, useState } from 'react';
import type { Channel } from '../api/types';
import { keys } from './keys';
import type { MessageList } from './messageList';
import type { UserSettings } from '../api/types';
import type { BlockedMap, Chat, Connection, MemberPage, PresenceMap, UserMap } from './store';

export const ChatContext = createContext<Chat | null>(null);

export function useChat(): Chat {
  const chat = useContext(ChatContext);
  if (!chat) throw new Error('useChat outside ChatContext');
  return chat;
}

/** Data the gateway writes into the cache; never fetched. */
export function useCached<T>(key: readonly unknown[], fallback: T): T {
  const qc = useQueryClient();
  const { data } = useQuery({
    queryKey: key,
    queryFn: () => qc.getQueryData<T>(key) ?? fallback,
    staleTime: Infinity,
    gcTime: Infinity,
    enabled: false,
  });
  return (data as T | undefined) ?? fallback;
}

const none = {};
export const useChannels = () => useCached<Channel[]>(keys.channels, []);
export const useUsers = () => useCached<UserMap>(keys.users, none as UserMap);
export const usePresence = () => useCached<PresenceMap>(keys.presence, null);
export const useConnection = () =>
  useCached<Connection>(keys.connection, { state: 'idle', reconnecting: false });
export const useMembers = (channelId: string) => useCached<MemberPage | null>(keys.members(channelId), null);
export const useBlocked = () => useCached<BlockedMap>(keys.blocked, none as BlockedMap);
export const useSettings = () => useCached<UserSettings | null>(keys.settings, null);
export const useReceipts = (channelId: string) =>
  useCached<Record<string, string>>(keys.receipts(channelId), none as Record<string, string>);

export const useSlowDown = (channelId: string) => useCached<boolean>(keys.slowDown(channelId), false);

/** Who is typing in a channel now (user ids), re-evaluated as notices expire. */
export function useTyping(channelId: string): string[] {
  const typing = useCached<Record<string, number>>(keys.typing(channelId), none as Record<string, number>);
  const [now, setNow] = useState(() => Date.now());
  const ids = Object.entries(typing)
    .filter(([, until]) => until > now)
    .map(([id]) => id);
  useEffect(() => {
    if (ids.length === 0) return;
    const t = setTimeout(() => setNow(Date.now()), 1000);
    return () => clearTimeout(t);
  });
  return ids;
}

export function useMessages(channelId: string) {
  const chat = useChat();
  return useQuery<MessageList>({
    queryKey: keys.messages(channelId),
    queryFn: () => chat.loadLatest(channelId),
    staleTime: Infinity,
    gcTime: 10 * 60_000,
    retry: 3,
  });
}
