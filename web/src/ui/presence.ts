import type { Status, User } from '../api/types';
import type { PresenceMap } from '../chat/store';

/** What dot to show for a user: live presence when the edges speak it, else their set status. */
export function presenceOf(user: User | undefined, presence: PresenceMap, meId: string): Status {
  if (!user) return 'offline';
  if (user.id === meId && user.status === 'invisible') return 'invisible';
  if (presence) return presence[user.id] ?? 'offline';
  return user.status === 'invisible' ? 'offline' : user.status;
}
