import type { Status, User } from '../api/types';
import type { PresenceMap } from '../chat/store';

/**
 * What dot to show for a user: live presence when the edges speak it (READY carried `presences`),
 * else the status they set. `undefined` when presence is unknown (its store is down): no dot.
 */
export function presenceOf(user: User | undefined, presence: PresenceMap, meId: string): Status | undefined {
  if (!user) return undefined;
  if (user.id === meId) {
    // READY lists others only; my own sessions hear PRESENCE_UPDATEs about me with my real status.
    const mine = presence?.[meId];
    return mine === undefined || mine === 'unknown' ? user.status : mine;
  }
  if (presence) {
    const p = presence[user.id];
    if (p === 'unknown') return undefined;
    return p ?? 'offline';
  }
  return user.status === 'invisible' ? 'offline' : user.status;
}
