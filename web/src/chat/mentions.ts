// Whether a message mentions me, as the server counts it for READY's `mention_count`: by name, by
// one of my roles in the channel's server, or everyone; never my own message.
import type { Message } from '../api/types';

export function mentionsUser(m: Message, me: string, roles: readonly string[]): boolean {
  if (m.author_id === me) return false;
  return (
    m.mention_everyone === true ||
    (m.mentions ?? []).includes(me) ||
    (m.mention_roles ?? []).some((r) => roles.includes(r))
  );
}
