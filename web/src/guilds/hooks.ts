// What server views read: the cache the guild store keeps current, and the user's own
// permissions computed from it (the same rules as the server's).
import { useEffect, useState } from 'react';
import { useChannels, useCached } from '../chat/hooks';
import { keys } from '../chat/keys';
import { compareIds } from '../chat/snowflake';
import { isTimedOut, permissionsIn } from './permissions';
import type { GuildMemberPage, GuildState, Notice } from './store';
import type { Channel } from './types';

const noGuilds: GuildState[] = [];
export const useGuilds = () => useCached<GuildState[]>(keys.guilds, noGuilds);
export const useGuild = (id: string | null | undefined) => useGuilds().find((g) => g.id === id);
export const useGuildMembers = (id: string) => useCached<GuildMemberPage | null>(keys.guildMembers(id), null);
export const useNotice = () => useCached<Notice | null>(keys.notice, null);

/** A server's channels I may view, in list order (positions, then ids, as Discord sorts them). */
export function useGuildChannels(guildId: string | null | undefined): Channel[] {
  const channels = useChannels();
  return channels.filter((c) => c.guild_id === guildId).sort(byPosition);
}

export function byPosition(a: Channel, b: Channel): number {
  return (a.position ?? 0) - (b.position ?? 0) || compareIds(a.id, b.id);
}

/** The clock, ticking every `ms` while `on` (a time-out's countdown; a role's end). */
export function useNow(on: boolean, ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!on) return;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [on, ms]);
  return now;
}

/**
 * What I may do in a server (`channel` absent) or one of its channels, now: recomputed as roles,
 * overwrites, my roles and my time-out change, and when my time-out ends.
 */
export function useMyPermissions(guildId: string | null | undefined, channel?: Channel): bigint {
  const guild = useGuild(guildId);
  const timedOut = !!guild && isTimedOut(guild.member);
  const now = useNow(timedOut);
  if (!guild) return 0n;
  return permissionsIn(guild, guild.member, channel, now);
}
