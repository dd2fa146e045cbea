// What a call's system message (Discord's type 3) says: the server writes it when a call in a
// DM or group channel ends, with who was in it and when it began and ended.
import type { MessageCall } from '../api/types';

/** How long a call lasted, in words ("3 minutes", "a few seconds"). */
export function callLength(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1) return 'a few seconds';
  if (minutes < 60) return minutes === 1 ? 'a minute' : `${minutes} minutes`;
  const hours = Math.round(minutes / 60);
  return hours === 1 ? 'an hour' : `${hours} hours`;
}

/**
 * Whether `me` missed the call: nobody answered it (only its caller was in it), or others
 * talked without me.
 */
export function missedBy(call: MessageCall, caller: string, me: string): boolean {
  return call.participants.length <= 1 || (caller !== me && !call.participants.includes(me));
}
