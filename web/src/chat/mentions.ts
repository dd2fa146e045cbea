// Whether a message mentions me, as the server counts it for READY's `mention_count`: by name, by
// one of my roles in the channel's server, or everyone; never my own message. And the names the
// message itself carries for the people it mentions (Discord's user objects), for those the
// client has not loaded.
import type { Message } from '../api/types';
import type { MentionNames } from '../ui/markdown';

/** A mention as a message carries it: a user object, or (a message from before) a bare id. */
type Mention = NonNullable<Message['mentions']>[number] | string;

/** The ids of the people a message mentions. */
export function mentionedIds(m: Pick<Message, 'mentions'>): string[] {
  return ((m.mentions ?? []) as readonly Mention[]).map((u) => (typeof u === 'string' ? u : u.id));
}

export function mentionsUser(m: Message, me: string, roles: readonly string[]): boolean {
  if (m.author_id === me) return false;
  return (
    m.mention_everyone === true ||
    mentionedIds(m).includes(me) ||
    (m.mention_roles ?? []).some((r) => roles.includes(r))
  );
}

/**
 * `names`, falling back to the names the message carries for the people it mentions (their
 * display name, else username) when the client knows nobody by that id.
 */
export function withMentionedNames(names: MentionNames, m: Pick<Message, 'mentions'>): MentionNames {
  const carried = new Map<string, string>();
  for (const u of (m.mentions ?? []) as readonly Mention[]) {
    if (typeof u === 'string') continue;
    const name = u.global_name || u.username;
    if (name) carried.set(u.id, name);
  }
  if (carried.size === 0) return names;
  return { ...names, user: (id) => names.user(id) ?? carried.get(id) };
}
