// One channel's messages as the client shows them: confirmed messages in id order, then the
// client's own pending sends in the order they were written. Every function is pure and returns a
// new list, so the cache (TanStack Query) can hold it and React can compare by reference.
//
// The same message can arrive several times and in any order: as the ACK of a send, as its
// MESSAGE_CREATE on the gateway, in a history page, and again in a resume's replay. Merging is
// therefore by id (and by nonce for the sender's pending copy), an edit wins only if it is newer,
// and a deleted id is remembered so a late copy does not bring the message back.

import type { Message } from '../api/types';
import { compareIds } from './snowflake';

export type Delivery = 'pending' | 'failed' | 'sent';

export interface ChatMessage extends Message {
  delivery: Delivery;
}

export interface MessageList {
  /** Confirmed messages in ascending id order, then pending and failed ones. */
  items: ChatMessage[];
  /** Whether older messages than the first may exist on the server. */
  hasOlder: boolean;
  /** Ids deleted while this list was held: a late create or page must not revive them. */
  deleted: ReadonlySet<string>;
  /** The last history request failed (the list still takes live messages); offer a retry. */
  historyFailed?: boolean;
  /**
   * The list is a window opened at an older message (`around=`), not the run up to the present:
   * newer messages exist that it does not hold, so live ones wait for `after=` pages instead of
   * landing beyond a gap.
   */
  hasNewer?: boolean;
}

export const emptyList = (hasOlder = true): MessageList => ({
  items: [],
  hasOlder,
  deleted: new Set(),
});

const pendingId = (nonce: string) => `pending:${nonce}`;

export function isConfirmed(m: ChatMessage): boolean {
  return m.delivery === 'sent';
}

/** The newest confirmed message, if any. */
export function lastConfirmed(list: MessageList): ChatMessage | undefined {
  for (let i = list.items.length - 1; i >= 0; i--) {
    if (isConfirmed(list.items[i])) return list.items[i];
  }
  return undefined;
}

export function firstConfirmed(list: MessageList): ChatMessage | undefined {
  return list.items.find(isConfirmed);
}

/** A send the user just made, shown at once at the end. */
export function addPending(
  list: MessageList,
  m: { nonce: string; channel_id: string; author_id: string; content: string },
): MessageList {
  if (list.items.some((x) => x.nonce === m.nonce)) return list;
  const item: ChatMessage = { ...m, id: pendingId(m.nonce), delivery: 'pending' };
  return { ...list, items: [...list.items, item] };
}

/** The send with this nonce failed; it stays, marked, for a retry. */
export function markFailed(list: MessageList, nonce: string): MessageList {
  return setDelivery(list, nonce, 'failed');
}

/** A retry of a failed send (with the same nonce). */
export function markRetrying(list: MessageList, nonce: string): MessageList {
  return setDelivery(list, nonce, 'pending');
}

function setDelivery(list: MessageList, nonce: string, delivery: Delivery): MessageList {
  let changed = false;
  const items = list.items.map((x) => {
    if (x.delivery !== 'sent' && x.nonce === nonce && x.delivery !== delivery) {
      changed = true;
      return { ...x, delivery };
    }
    return x;
  });
  return changed ? { ...list, items } : list;
}

/** Drops a pending or failed send the user gave up on. */
export function discardPending(list: MessageList, nonce: string): MessageList {
  const items = list.items.filter((x) => x.delivery === 'sent' || x.nonce !== nonce);
  return items.length === list.items.length ? list : { ...list, items };
}

function newer(a: ChatMessage, b: Message): boolean {
  // Whether `b` should replace `a`: a later edit, or the same edit state with new content.
  return (b.edited_at ?? 0) >= (a.edited_at ?? 0);
}

/**
 * Merges confirmed messages (an ACK, a MESSAGE_CREATE, a history page, a replay) into the list:
 * each replaces the pending copy with its nonce, or the copy with its id if it is not older, or is
 * inserted in order. Deleted ids stay deleted.
 */
export function mergeMessages(list: MessageList, incoming: Message[]): MessageList {
  if (incoming.length === 0) return list;
  const older = prependOlder(list, incoming);
  if (older) return older;
  const confirmed = new Map<string, ChatMessage>();
  const unconfirmed: ChatMessage[] = [];
  for (const m of list.items) {
    if (m.delivery === 'sent') confirmed.set(m.id, m);
    else unconfirmed.push(m);
  }
  let changed = false;
  const nonces = new Set<string>();
  for (const m of incoming) {
    if (m.nonce) nonces.add(m.nonce);
    if (list.deleted.has(m.id)) continue;
    const existing = confirmed.get(m.id);
    if (existing && !newer(existing, m)) continue;
    // A copy without the sender's nonce (an update, a page) keeps the one held: the row is keyed
    // by it, and a new key would mount the message afresh.
    const copy: ChatMessage =
      existing?.nonce && !m.nonce
        ? { ...m, nonce: existing.nonce, delivery: 'sent' }
        : { ...m, delivery: 'sent' };
    if (existing && sameMessage(existing, copy)) continue;
    confirmed.set(m.id, copy);
    changed = true;
  }
  const stillPending = unconfirmed.filter((x) => !x.nonce || !nonces.has(x.nonce));
  if (!changed && stillPending.length === unconfirmed.length) return list;
  const sorted = [...confirmed.values()].sort((a, b) => compareIds(a.id, b.id));
  return { ...list, items: [...sorted, ...stillPending] };
}

/**
 * The common case of scrolling back: a page wholly older than everything held. It goes in front
 * without re-sorting the whole list, which matters at ten thousand messages.
 */
function prependOlder(list: MessageList, incoming: Message[]): MessageList | null {
  const first = list.items.find((m) => m.delivery === 'sent');
  if (!first) return null;
  const fresh = incoming.filter((m) => !list.deleted.has(m.id));
  if (!fresh.every((m) => compareIds(m.id, first.id) < 0)) return null;
  const sorted = fresh
    .map((m): ChatMessage => ({ ...m, delivery: 'sent' }))
    .sort((a, b) => compareIds(a.id, b.id));
  for (let i = 1; i < sorted.length; i++) if (sorted[i].id === sorted[i - 1].id) return null;
  return { ...list, items: [...sorted, ...list.items] };
}

/** A MESSAGE_UPDATE: replaces the message if this list holds it and the edit is newer. The
 * event carries no reactions: the message keeps its own. */
export function applyEdit(list: MessageList, m: Message): MessageList {
  const held = list.items.find((x) => x.id === m.id && x.delivery === 'sent');
  if (!held) return list;
  return mergeMessages(list, [{ ...m, reactions: held.reactions }]);
}

/**
 * Whether a copy says nothing new about the message held: every field alike (the list then keeps
 * its reference and nothing re-renders). Any field counts, since more than edits change a message
 * without changing its text: media adding link previews or an image's real size, a flag, a pin.
 */
function sameMessage(held: ChatMessage, m: Message): boolean {
  const a = held as unknown as Record<string, unknown>;
  const b = m as unknown as Record<string, unknown>;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (key === 'delivery' || a[key] === b[key]) continue;
    if (JSON.stringify(a[key] ?? null) !== JSON.stringify(b[key] ?? null)) return false;
  }
  return true;
}

/** What a MESSAGE_REACTION_ADD or _REMOVE says. */
export interface ReactionChange {
  message_id: string;
  user_id: string;
  emoji: { name: string };
}

/**
 * A MESSAGE_REACTION_ADD (`added`) or _REMOVE: one more or one fewer of the emoji on the message,
 * and `me` when the reactor is `me`. A change of one's own that the message already shows (a
 * history page read after it was stored) changes nothing.
 */
export function applyReaction(list: MessageList, r: ReactionChange, added: boolean, me: string): MessageList {
  const index = list.items.findIndex((x) => x.id === r.message_id && x.delivery === 'sent');
  if (index < 0) return list;
  const message = list.items[index];
  const reactions = [...(message.reactions ?? [])];
  const at = reactions.findIndex((x) => x.emoji.name === r.emoji.name);
  const mine = r.user_id === me;
  const current = at >= 0 ? reactions[at] : { emoji: { id: null, name: r.emoji.name }, count: 0, me: false };
  if (mine && current.me === added) return list;
  const count = Math.max(0, current.count + (added ? 1 : -1));
  const next = { ...current, count, me: mine ? added : current.me };
  if (at >= 0 && count === 0) reactions.splice(at, 1);
  else if (at >= 0) reactions[at] = next;
  else if (count > 0) reactions.push(next);
  const items = [...list.items];
  items[index] = { ...message, reactions };
  return { ...list, items };
}

/** A MESSAGE_REACTION_REMOVE_ALL: the message shows no reactions. */
export function clearReactions(list: MessageList, id: string): MessageList {
  const index = list.items.findIndex((x) => x.id === id);
  if (index < 0 || !list.items[index].reactions?.length) return list;
  const items = [...list.items];
  items[index] = { ...items[index], reactions: [] };
  return { ...list, items };
}

/** A MESSAGE_DELETE: removes the message and remembers its id. */
export function applyDelete(list: MessageList, id: string): MessageList {
  const deleted = new Set(list.deleted);
  deleted.add(id);
  return { ...list, items: list.items.filter((x) => x.id !== id), deleted };
}

/** An older page from history (newest first, as the server sends it). */
export function mergeOlder(list: MessageList, page: Message[], limit: number): MessageList {
  const merged = mergeMessages(list, page);
  const hasOlder = page.length >= limit;
  return merged.hasOlder === hasOlder ? merged : { ...merged, hasOlder };
}

/**
 * A window of history opened at a message: the `around=` page of `limit` messages (newest first,
 * as the server sends it), with older pages above and, unless the page reached the newest
 * message, newer pages below. Pending sends stay at the end.
 */
export function windowAround(list: MessageList, page: Message[], limit: number, at: string): MessageList {
  const sorted = page
    .map((m): ChatMessage => ({ ...m, delivery: 'sent' }))
    .sort((a, b) => compareIds(a.id, b.id));
  const older = sorted.filter((m) => compareIds(m.id, at) < 0).length;
  const newer = sorted.filter((m) => compareIds(m.id, at) > 0).length;
  const half = Math.floor(limit / 2);
  const pending = list.items.filter((m) => m.delivery !== 'sent');
  return {
    items: [...sorted, ...pending],
    hasOlder: older >= half,
    hasNewer: newer >= limit - half - 1,
    deleted: list.deleted,
  };
}

/** A newer page (newest first) below a window; the window reaches the present when it is short. */
export function mergeNewer(list: MessageList, page: Message[], limit: number): MessageList {
  const merged = mergeMessages(list, page);
  const hasNewer = page.length >= limit;
  return merged.hasNewer === hasNewer ? merged : { ...merged, hasNewer };
}
