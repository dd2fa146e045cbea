// A search box's text as Discord reads it: words, and filters written `name:value` (from:ann,
// mentions:bob, in:general, has:file, pinned:true, before:2026-12-01, after:2026-11-30), turned into the query
// string of `GET …/messages/search`. Names are resolved by the caller (who knows the users and
// channels in view); what cannot be resolved is reported, never silently dropped.

import { NATTER_EPOCH_MS } from '../chat/snowflake';

export const HAS = ['link', 'file', 'image', 'video', 'embed'] as const;

export interface Resolve {
  /** A user's id from a username (without a leading @), if known. */
  user: (name: string) => string | undefined;
  /** A channel's id from its name (without a leading #), if it is one searched. */
  channel: (name: string) => string | undefined;
}

export interface ParsedSearch {
  /** The query parameters, in a stable order (empty when there is nothing to search). */
  params: [string, string][];
  /** What could not be understood, as people would say it. */
  problems: string[];
}

/** The first id made at `ms` (Unix milliseconds): ids sort by time, so a date is an id. */
export function idAt(ms: number): string {
  const since = BigInt(Math.max(0, Math.floor(ms - NATTER_EPOCH_MS)));
  return (since << 22n).toString();
}

/** `YYYY-MM-DD` as the start of that day, UTC, in Unix milliseconds. */
function day(value: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return undefined;
  const ms = Date.parse(`${value}T00:00:00Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

const DAY_MS = 86_400_000;

export function parseSearch(text: string, resolve: Resolve): ParsedSearch {
  const words: string[] = [];
  const problems: string[] = [];
  const params: Record<string, string> = {};
  for (const token of text.trim().split(/\s+/).filter(Boolean)) {
    const m = /^(from|mentions|in|has|pinned|before|after):(.+)$/i.exec(token);
    if (!m) {
      words.push(token);
      continue;
    }
    const name = m[1].toLowerCase();
    const value = m[2];
    switch (name) {
      case 'from':
      case 'mentions': {
        const id = resolve.user(value.replace(/^@/, '').toLowerCase());
        if (id) params[name === 'from' ? 'author_id' : 'mentions'] = id;
        else problems.push(`no one called ${value}`);
        break;
      }
      case 'in': {
        const id = resolve.channel(value.replace(/^#/, '').toLowerCase());
        if (id) params.channel_id = id;
        else problems.push(`no channel called ${value}`);
        break;
      }
      case 'has': {
        const has = value.toLowerCase();
        if ((HAS as readonly string[]).includes(has)) params.has = has;
        else problems.push(`has: is one of ${HAS.join(', ')}`);
        break;
      }
      case 'pinned': {
        const pinned = value.toLowerCase();
        if (pinned === 'true' || pinned === 'false') params.pinned = pinned;
        else problems.push('pinned: is true or false');
        break;
      }
      case 'before':
      case 'after': {
        const start = day(value);
        if (start === undefined) problems.push(`${name}: takes a date like 2026-12-01`);
        else if (name === 'before') params.max_id = idAt(start);
        else params.min_id = idAt(start + DAY_MS - 1);
        break;
      }
    }
  }
  if (words.length > 0) params.content = words.join(' ');
  const order = ['content', 'author_id', 'mentions', 'channel_id', 'has', 'pinned', 'min_id', 'max_id'];
  return {
    params: order.filter((k) => k in params).map((k) => [k, params[k]] as [string, string]),
    problems,
  };
}
