// The inbox's pure parts: which entries still need me, and how an entry's text reads.
import type { Channel, MentionEntry } from '../api/types';
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
