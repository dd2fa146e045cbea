// Turns a channel's messages into the rows the list shows: a divider where the day changes, and a
// header (avatar, name, time) where the author changes or pauses for more than seven minutes.
import type { ChatMessage } from '../chat/messageList';
import { idTime } from '../chat/snowflake';

export type Row =
  | { kind: 'day'; key: string; label: string }
  | { kind: 'message'; key: string; message: ChatMessage; head: boolean; time: number };

const GROUP_MS = 7 * 60_000;

function dayLabel(t: number): string {
  return new Date(t).toLocaleDateString(undefined, {
    weekday: 'long',
    year: 'numeric',
    month: 'long',
    day: 'numeric',
  });
}

export function buildRows(items: ChatMessage[], now = Date.now()): Row[] {
  const rows: Row[] = [];
  let prevAuthor: string | null = null;
  let prevTime = 0;
  let prevDay = NaN;
  for (const m of items) {
    const time = m.delivery === 'sent' ? idTime(m.id) : now;
    // The local calendar day as a number: cheap enough to do for ten thousand messages per render.
    const day = Math.floor((time - new Date(time).getTimezoneOffset() * 60_000) / 86_400_000);
    if (day !== prevDay) {
      rows.push({ kind: 'day', key: `day-${day}`, label: dayLabel(time) });
      prevAuthor = null;
      prevDay = day;
    }
    const head = m.author_id !== prevAuthor || time - prevTime > GROUP_MS;
    // Pending copies are keyed by nonce so the row keeps its place when the server confirms it.
    rows.push({ kind: 'message', key: m.nonce ? `n-${m.nonce}` : m.id, message: m, head, time });
    prevAuthor = m.author_id;
    prevTime = time;
  }
  return rows;
}
