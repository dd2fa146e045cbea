// The inbox's pure parts: which entries still need me, and how an entry's text reads.
import type { Channel, MentionEntry, Message } from '../api/types';
import { compareIds } from '../chat/snowflake';

/** Whether an entry still needs me: not read here or on another device. */
export function stillUnread(e: MentionEntry, channel: Pick<Channel, 'last_read_id'> | undefined): boolean {
  if (e.read) return false;
  const marker = channel?.last_read_id;
  return !marker || compareIds(marker, e.id) < 0;
}

/** An entry's text as one line: mentions by name (`<@id>` as `@ann`), whitespace folded. */
export function previewText(content: string, nameOf: (id: string) => string | undefined): string {
  return content
    .replace(/<@!?(\d{1,20})>/g, (all, id: string) => {
      const name = nameOf(id);
      return name ? `@${name}` : all;
    })
    .replace(/\s+/g, ' ')
    .trim();
}

/** The most characters of a message an inbox entry keeps (the server's excerpt). */
export const EXCERPT_CHARS = 200;

/**
 * What an edit (MESSAGE_UPDATE) does to my inbox as this device holds it. `concernsMe`: the edited
 * message mentions me (by name, role or everyone) or came in a DM or group channel. An entry that
 * still concerns me shows the new text; one that no longer does leaves. One the edit newly
 * concerns me with cannot be made here (notify decides it, with my settings): `refetch` asks the
 * server's list, as a new message does. An update with no edit time, or the same text (media's
 * link previews and image sizes), changes nothing, and the same list comes back.
 */
export function followEdit(
  entries: MentionEntry[] | undefined,
  m: Pick<Message, 'id' | 'content' | 'edited_at'>,
  concernsMe: boolean,
): { entries: MentionEntry[] | undefined; refetch: boolean } {
  if (m.edited_at == null) return { entries, refetch: false };
  const held = entries?.find((e) => e.id === m.id);
  if (!held) return { entries, refetch: concernsMe };
  if (!concernsMe) return { entries: entries!.filter((e) => e.id !== m.id), refetch: false };
  const content = Array.from(m.content).slice(0, EXCERPT_CHARS).join('');
  if (held.content === content) return { entries, refetch: false };
  return { entries: entries!.map((e) => (e.id === m.id ? { ...e, content } : e)), refetch: false };
}
