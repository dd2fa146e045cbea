// Turns a channel's messages into the rows the list shows: a divider where the day changes, a
// header (avatar, name, time) where the author changes or pauses for more than seven minutes, and
// one collapsed row for each run of messages by people the reader blocks (Discord's "1 blocked
// message"), unless the reader chose to show that run.
import type { ChatMessage } from '../chat/messageList';
import { compareIds, idTime } from '../chat/snowflake';

export type Row =
  | { kind: 'day'; key: string; label: string }
  | { kind: 'message'; key: string; message: ChatMessage; head: boolean; time: number }
  | { kind: 'blocked'; key: string; count: number }
  /** "New messages": where the reader stopped reading when they opened the channel. */
  | { kind: 'new'; key: string };

const GROUP_MS = 7 * 60_000;

function dayLabel(t: number): string {
  return new Date(t).toLocaleDateString(undefined, {
    weekday: 'long',
    year: 'numeric',
    month: 'long',
    day: 'numeric',
  });
}

export function buildRows(
  items: ChatMessage[],
  now = Date.now(),
  hidden?: (m: ChatMessage) => boolean,
  revealed?: ReadonlySet<string>,
  /** The reader's read marker: a "new messages" divider goes before the first message after it. */
  readUpTo?: string | null,
): Row[] {
  const rows: Row[] = [];
  let divided = !readUpTo;
  let prevAuthor: string | null = null;
  let prevTime = 0;
  let prevDay = NaN;
  // The run of hidden messages being collapsed, keyed by its first message so that showing it
  // survives new messages arriving.
  let run: { kind: 'blocked'; key: string; count: number } | null = null;
  for (const m of items) {
    const time = m.delivery === 'sent' ? idTime(m.id) : now;
    // The local calendar day as a number: cheap enough to do for ten thousand messages per render.
    const day = Math.floor((time - new Date(time).getTimezoneOffset() * 60_000) / 86_400_000);
    if (day !== prevDay) {
      rows.push({ kind: 'day', key: `day-${day}`, label: dayLabel(time) });
      prevAuthor = null;
      prevDay = day;
      run = null;
    }
    if (!divided && m.delivery === 'sent' && compareIds(m.id, readUpTo!) > 0) {
      rows.push({ kind: 'new', key: 'new-messages' });
      divided = true;
      prevAuthor = null;
    }
    // Pending copies are keyed by nonce so the row keeps its place when the server confirms it.
    const key = m.nonce ? `n-${m.nonce}` : m.id;
    if (hidden?.(m)) {
      if (!run) {
        run = { kind: 'blocked', key: `blocked-${key}`, count: 0 };
        if (!revealed?.has(run.key)) rows.push(run);
      }
      run.count++;
      if (!revealed?.has(run.key)) {
        prevAuthor = null;
        continue;
      }
    } else {
      run = null;
    }
    const head = m.author_id !== prevAuthor || time - prevTime > GROUP_MS;
    rows.push({ kind: 'message', key, message: m, head, time });
    prevAuthor = m.author_id;
    prevTime = time;
  }
  return rows;
}
