// Something to tell the user once, in a banner until dismissed: that they were removed from a
// server or a group channel, banned, or timed out. Raised by the stores from the gateway's events,
// so the person is told why a server or channel went, rather than watch it vanish.
import type { QueryClient } from '@tanstack/react-query';
import { keys } from './keys';

export interface Notice {
  id: number;
  text: string;
}

let raised = 0;

export function raiseNotice(qc: QueryClient, text: string) {
  qc.setQueryData<Notice>(keys.notice, { id: ++raised, text });
}

/** A moment as people say it: "14:05" today, "Dec 3, 14:05" another day. */
export function momentText(ms: number, now = Date.now()): string {
  const at = new Date(ms);
  const time = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return at.toDateString() === new Date(now).toDateString()
    ? time
    : `${at.toLocaleDateString([], { month: 'short', day: 'numeric' })}, ${time}`;
}
