import { VoicePane as VoiceCallPane } from '../../voice/VoicePanel';
import { useMyPermissions, useNow } from '../../guilds/hooks';
import { has, isTimedOut, Permission } from '../../guilds/permissions';
import type { GuildState } from '../../guilds/store';
import type { Channel } from '../../guilds/types';

/** "4:59" or "2 h 5 min": what is left of a time-out. */
export function timeLeft(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 3600) return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  const h = Math.floor(s / 3600);
  if (h < 48) return `${h} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(h / 24)} days`;
}

/** Why the user may not send in a server's channel now, or null when they may (or it is no server's). */
export function useSendBlocked(guild: GuildState | undefined, channel: Channel): string | null {
  const mine = useMyPermissions(guild?.id, channel);
  const until = guild?.member.communication_disabled_until ?? 0;
  const timedOut = !!guild && isTimedOut(guild.member);
  const now = useNow(timedOut);
  if (!guild || has(mine, Permission.SEND_MESSAGES)) return null;
  if (timedOut && until > now) {
    const at = new Date(until).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return `You are timed out until ${at} (${timeLeft(until - now)} left): you may read, not send.`;
  }
  return 'You do not have permission to send messages in this channel.';
}

/** A voice channel: who is in it, joining, and the call. */
export function VoicePane({ channel }: { channel: Channel }) {
  return (
    <VoiceCallPane guildId={channel.guild_id ?? null} channelId={channel.id} title={channel.name ?? ''} />
  );
}
