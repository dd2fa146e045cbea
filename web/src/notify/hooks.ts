// Views read notification state through these; notify/store.ts keeps it current.
import { useEffect, useState } from 'react';
import type { Channel } from '../api/types';
import { useCached } from '../chat/hooks';
import { useGuilds } from '../guilds/hooks';
import { applied, guildMuted, type Applied, type SettingsMap } from './rules';
import { notifyKeys, type Prefs } from './store';

const none: SettingsMap = {};
export const useNotifySettings = () => useCached<SettingsMap>(notifyKeys.settings, none);
export const useNotifyPrefs = () => useCached<Prefs>(notifyKeys.prefs, { desktop: true, sound: true });

/** Now, re-read every 30 s and at the next mute's end, so a timed mute ends on screen too. */
function useNow(): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(t);
  }, []);
  return now;
}

/** The settings that apply to a channel, now. */
export function useApplied(channel: Pick<Channel, 'id' | 'guild_id' | 'member_count'>): Applied {
  const all = useNotifySettings();
  const guilds = useGuilds();
  const now = useNow();
  const count = channel.guild_id
    ? (guilds.find((g) => g.id === channel.guild_id)?.member_count ?? 0)
    : (channel.member_count ?? 0);
  return applied(all, channel, count, now);
}

/** Which channels and servers are muted now (they look muted in the lists). */
export function useMuted(): {
  channel: (c: Pick<Channel, 'id' | 'guild_id'>) => boolean;
  guild: (id: string) => boolean;
} {
  const all = useNotifySettings();
  const now = useNow();
  return {
    channel: (c) => applied(all, c, 0, now).channelMuted,
    guild: (id) => guildMuted(all, id, now),
  };
}
