import { describe, expect, it } from 'vitest';
import { buildRows } from './rows';

describe('rows', () => {
  const at = (ms: number, n: number) => ((BigInt(ms) << 22n) | BigInt(n)).toString();
  it('group messages by author and split them by day', () => {
    const day = 24 * 3600_000;
    const items = [
      { id: at(1000, 1), author_id: 'a' },
      { id: at(2000, 2), author_id: 'a' },
      { id: at(3000, 3), author_id: 'b' },
      { id: at(day * 2, 4), author_id: 'b' },
    ].map((m) => ({ ...m, channel_id: 'c', content: 'x', delivery: 'sent' as const }));
    const rows = buildRows(items);
    expect(rows.map((r) => (r.kind === 'message' ? (r.head ? 'head' : 'cont') : r.kind))).toEqual([
      'day',
      'head',
      'cont',
      'head',
      'day',
      'head',
    ]);
  });
});

describe('blocked messages', () => {
  const at = (ms: number, n: number) => ((BigInt(ms) << 22n) | BigInt(n)).toString();
  const items = [
    { id: at(1000, 1), author_id: 'a' },
    { id: at(2000, 2), author_id: 'x' },
    { id: at(3000, 3), author_id: 'x' },
    { id: at(4000, 4), author_id: 'a' },
    { id: at(5000, 5), author_id: 'x' },
  ].map((m) => ({ ...m, channel_id: 'c', content: 'x', delivery: 'sent' as const }));
  const byX = (m: { author_id: string }) => m.author_id === 'x';
  const shape = (rows: ReturnType<typeof buildRows>) =>
    rows.map((r) =>
      r.kind === 'blocked' ? `blocked ${r.count}` : r.kind === 'message' ? r.message.author_id : 'day',
    );

  it('collapse into one row per run, and the next message gets its own header', () => {
    const rows = buildRows(items, 0, byX);
    expect(shape(rows)).toEqual(['day', 'a', 'blocked 2', 'a', 'blocked 1']);
    const after = rows[3];
    expect(after.kind === 'message' && after.head).toBe(true);
  });

  it('show a run once asked, by the key of its first message', () => {
    const first = buildRows(items, 0, byX).find((r) => r.kind === 'blocked')!;
    const rows = buildRows(items, 0, byX, new Set([first.key]));
    expect(shape(rows)).toEqual(['day', 'a', 'x', 'x', 'a', 'blocked 1']);
  });
});

describe('the new messages divider', () => {
  const at = (ms: number, n: number) => ((BigInt(ms) << 22n) | BigInt(n)).toString();
  it('goes before the first message after the read marker, once', () => {
    const items = [1, 2, 3].map((n) => ({ id: at(1000 + n, n), author_id: 'a', delivery: 'sent' }));
    const rows = buildRows(items as never, 10_000, undefined, undefined, items[0].id);
    const kinds = rows.map((r) => (r.kind === 'message' ? r.message.id : r.kind));
    expect(kinds).toEqual(['day', items[0].id, 'new', items[1].id, items[2].id]);
    expect(buildRows(items as never, 10_000).some((r) => r.kind === 'new')).toBe(false);
  });
});
