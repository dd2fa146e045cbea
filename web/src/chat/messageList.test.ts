import { describe, expect, it } from 'vitest';
import type { Message } from '../api/types';
import {
  windowAround,
  mergeNewer,
  addPending,
  applyDelete,
  applyEdit,
  applyReaction,
  clearReactions,
  discardPending,
  emptyList,
  markFailed,
  markRetrying,
  mergeMessages,
  mergeOlder,
  type MessageList,
} from './messageList';
import { compareIds, idTime, NATTER_EPOCH_MS } from './snowflake';

const msg = (id: string, content = `m${id}`, extra: Partial<Message> = {}): Message => ({
  id,
  channel_id: 'c',
  author_id: 'a',
  content,
  ...extra,
});
const ids = (l: MessageList) => l.items.map((m) => m.id);
const pending = (l: MessageList, nonce: string, content = 'hello') =>
  addPending(l, { nonce, channel_id: 'c', author_id: 'me', content });

describe('snowflakes', () => {
  it('order numerically even when the decimal strings differ in length', () => {
    expect(compareIds('9', '10')).toBeLessThan(0);
    expect(compareIds('175928847299117063', '175928847299117062')).toBeGreaterThan(0);
    expect(['100', '20', '3'].sort(compareIds)).toEqual(['3', '20', '100']);
  });

  it('carry their creation time', () => {
    const id = ((BigInt(5_000) << 22n) | 7n).toString();
    expect(idTime(id)).toBe(NATTER_EPOCH_MS + 5_000);
  });
});

describe('pending sends', () => {
  it('show at once at the end, after confirmed messages', () => {
    const l = pending(mergeMessages(emptyList(), [msg('1'), msg('2')]), 'n1');
    expect(l.items.map((m) => m.delivery)).toEqual(['sent', 'sent', 'pending']);
    expect(l.items[2].content).toBe('hello');
  });

  it('are replaced by the confirmed message with their nonce, in id order', () => {
    let l = pending(mergeMessages(emptyList(), [msg('10')]), 'n1');
    l = mergeMessages(l, [msg('20', 'hello', { nonce: 'n1', author_id: 'me' })]);
    expect(ids(l)).toEqual(['10', '20']);
    expect(l.items[1].delivery).toBe('sent');
  });

  it('keep their place behind a message from someone else that lands first', () => {
    let l = pending(emptyList(), 'mine');
    l = mergeMessages(l, [msg('5', 'theirs')]);
    expect(l.items.map((m) => m.delivery)).toEqual(['sent', 'pending']);
  });

  it('are confirmed once even if the ACK and the MESSAGE_CREATE both arrive', () => {
    let l = pending(emptyList(), 'n1');
    const stored = msg('7', 'hello', { nonce: 'n1' });
    l = mergeMessages(l, [stored]); // ACK
    const again = mergeMessages(l, [stored]); // MESSAGE_CREATE
    expect(again).toBe(l);
    expect(ids(again)).toEqual(['7']);
  });

  it('leave no pending copy when history brought the message before the ACK did', () => {
    let l = pending(emptyList(), 'n1');
    l = mergeMessages(l, [msg('7', 'hello')]); // a page: no nonce
    l = mergeMessages(l, [msg('7', 'hello', { nonce: 'n1' })]); // the ACK
    expect(ids(l)).toEqual(['7']);
  });

  it('can fail, be retried with the same nonce, and be discarded', () => {
    let l = pending(emptyList(), 'n1');
    l = markFailed(l, 'n1');
    expect(l.items[0].delivery).toBe('failed');
    l = markRetrying(l, 'n1');
    expect(l.items[0].delivery).toBe('pending');
    expect(l.items[0].nonce).toBe('n1');
    l = discardPending(markFailed(l, 'n1'), 'n1');
    expect(l.items).toEqual([]);
  });

  it('are not added twice for the same nonce', () => {
    const l = pending(pending(emptyList(), 'n1'), 'n1');
    expect(l.items).toHaveLength(1);
  });
});

describe('merging confirmed messages', () => {
  it('sorts out-of-order arrivals by id', () => {
    const l = mergeMessages(mergeMessages(emptyList(), [msg('30'), msg('10')]), [msg('20')]);
    expect(ids(l)).toEqual(['10', '20', '30']);
  });

  it('drops duplicates from a replay or an overlapping page', () => {
    let l = mergeMessages(emptyList(), [msg('1'), msg('2'), msg('3')]);
    const same = mergeMessages(l, [msg('2'), msg('3')]);
    expect(same).toBe(l);
    l = mergeMessages(l, [msg('3'), msg('4'), msg('2')]);
    expect(ids(l)).toEqual(['1', '2', '3', '4']);
  });

  it('merges older pages (newest first) and learns where history ends', () => {
    let l = mergeMessages(emptyList(), [msg('50'), msg('60')]);
    l = mergeOlder(l, [msg('49'), msg('48')], 2);
    expect(ids(l)).toEqual(['48', '49', '50', '60']);
    expect(l.hasOlder).toBe(true);
    l = mergeOlder(l, [msg('47')], 2);
    expect(l.hasOlder).toBe(false);
    expect(ids(l)[0]).toBe('47');
  });
});

describe('edits', () => {
  it('replace the content and carry the edit time', () => {
    let l = mergeMessages(emptyList(), [msg('1', 'helo')]);
    l = applyEdit(l, msg('1', 'hello', { edited_at: 1000 }));
    expect(l.items[0].content).toBe('hello');
    expect(l.items[0].edited_at).toBe(1000);
  });

  it('never let an older copy undo a newer edit', () => {
    let l = mergeMessages(emptyList(), [msg('1', 'v1')]);
    l = applyEdit(l, msg('1', 'v3', { edited_at: 3000 }));
    l = applyEdit(l, msg('1', 'v2', { edited_at: 2000 }));
    l = mergeMessages(l, [msg('1', 'v1')]); // a stale replay of the create
    expect(l.items[0].content).toBe('v3');
  });

  it('take what media added without an edit (link previews, the real size of an image)', () => {
    let l = mergeMessages(emptyList(), [msg('1', 'look: https://example.com')]);
    const embeds = [{ type: 'link', url: 'https://example.com', title: 'Example' }];
    l = applyEdit(l, msg('1', 'look: https://example.com', { embeds } as Partial<Message>));
    expect(l.items[0].embeds).toEqual(embeds);
    expect(applyEdit(l, msg('1', 'look: https://example.com', { embeds } as Partial<Message>))).toBe(l);
  });

  it('keep the nonce the row is keyed by when the update carries none', () => {
    let l = mergeMessages(emptyList(), [msg('1', 'photo', { nonce: 'n1' })]);
    l = applyEdit(l, msg('1', 'photo', { flags: 4 } as Partial<Message>));
    expect(l.items[0].nonce).toBe('n1');
    expect(l.items[0].flags).toBe(4);
  });

  it('of a message this list does not hold are ignored', () => {
    const l = mergeMessages(emptyList(), [msg('1')]);
    expect(applyEdit(l, msg('2', 'x', { edited_at: 5 }))).toBe(l);
  });
});

describe('deletes', () => {
  it('remove the message', () => {
    const l = applyDelete(mergeMessages(emptyList(), [msg('1'), msg('2')]), '1');
    expect(ids(l)).toEqual(['2']);
  });

  it('stay deleted when a late copy arrives from a page or a replay', () => {
    let l = applyDelete(mergeMessages(emptyList(), [msg('1'), msg('2')]), '2');
    l = mergeMessages(l, [msg('2'), msg('3')]);
    l = applyEdit(l, msg('2', 'edited', { edited_at: 9 }));
    expect(ids(l)).toEqual(['1', '3']);
  });

  it('that arrive before the create still win', () => {
    let l = applyDelete(emptyList(), '5');
    l = mergeMessages(l, [msg('5')]);
    expect(l.items).toEqual([]);
  });
});

describe('scrolling back', () => {
  it('puts a wholly older page in front, in order, without touching the rest', () => {
    let l = mergeMessages(emptyList(), [msg('100'), msg('200')]);
    l = pending(l, 'n');
    l = mergeOlder(l, [msg('90'), msg('80'), msg('95')], 3);
    expect(ids(l)).toEqual(['80', '90', '95', '100', '200', 'pending:n']);
    expect(l.hasOlder).toBe(true);
  });

  it('still skips deleted ids and duplicates in an older page', () => {
    let l = applyDelete(mergeMessages(emptyList(), [msg('100')]), '50');
    l = mergeMessages(l, [msg('50'), msg('40'), msg('40')]);
    expect(ids(l)).toEqual(['40', '100']);
  });
});

describe('reactions', () => {
  const thumbs = { name: '👍' };
  const held = () => mergeMessages(emptyList(), [msg('1')]);

  it('count up and down live, and mark my own', () => {
    let l = applyReaction(held(), { message_id: '1', user_id: 'bob', emoji: thumbs }, true, 'me');
    l = applyReaction(l, { message_id: '1', user_id: 'me', emoji: thumbs }, true, 'me');
    expect(l.items[0].reactions).toEqual([{ emoji: { id: null, name: '👍' }, count: 2, me: true }]);
    l = applyReaction(l, { message_id: '1', user_id: 'me', emoji: thumbs }, true, 'me');
    expect(l.items[0].reactions?.[0].count).toBe(2);
    l = applyReaction(l, { message_id: '1', user_id: 'bob', emoji: thumbs }, false, 'me');
    l = applyReaction(l, { message_id: '1', user_id: 'me', emoji: thumbs }, false, 'me');
    expect(l.items[0].reactions).toEqual([]);
  });

  it('survive an edit and go with a removal of all', () => {
    let l = applyReaction(held(), { message_id: '1', user_id: 'bob', emoji: thumbs }, true, 'me');
    l = applyEdit(l, msg('1', 'edited', { edited_at: 5 }));
    expect(l.items[0].content).toBe('edited');
    expect(l.items[0].reactions?.[0].count).toBe(1);
    expect(clearReactions(l, '1').items[0].reactions).toEqual([]);
  });

  it('come from a history page when it shows other counts', () => {
    const page = msg('1', 'm1', { reactions: [{ emoji: { id: null, name: '🔥' }, count: 3, me: false }] });
    const l = mergeMessages(held(), [page]);
    expect(l.items[0].reactions?.[0].count).toBe(3);
  });
});

describe('a window opened at an older message', () => {
  it('holds the page around it, with older and newer pages still to load', () => {
    const page = ['14', '13', '12', '11', '10'].map((id) => msg(id));
    const w = windowAround(emptyList(), page, 5, '12');
    expect(w.items.map((m) => m.id)).toEqual(['10', '11', '12', '13', '14']);
    expect(w.hasOlder).toBe(true);
    expect(w.hasNewer).toBe(true);
  });

  it('reaches the present when a newer page comes back short', () => {
    const w = windowAround(emptyList(), [msg('12'), msg('11'), msg('10')], 5, '11');
    const joined = mergeNewer({ ...w, hasNewer: true }, [msg('14'), msg('13')], 100);
    expect(joined.items.map((m) => m.id)).toEqual(['10', '11', '12', '13', '14']);
    expect(joined.hasNewer).toBe(false);
  });
});
