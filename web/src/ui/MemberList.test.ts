import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it, vi } from 'vitest';
import type { Channel, Member } from '../api/types';
import type { Chat } from '../chat/store';
import { groupPowers, leaveGroup, removeFromGroup } from './MemberList';

const member = (id: string, role: Member['role']): Member => ({
  user: { id, username: `u${id}`, display_name: null, avatar_url: null, bio: null, status: 'online' },
  role,
});

describe("a group channel's member menu", () => {
  it('lets the owner appoint, demote and remove anyone but themselves', () => {
    expect(groupPowers('owner', member('2', 'member'), '1')).toEqual({ moderators: true, remove: true });
    expect(groupPowers('owner', member('2', 'moderator'), '1')).toEqual({ moderators: true, remove: true });
    expect(groupPowers('owner', member('1', 'owner'), '1')).toEqual({ moderators: false, remove: false });
  });

  it('lets a moderator remove plain members only, and appoint nobody', () => {
    expect(groupPowers('moderator', member('3', 'member'), '2')).toEqual({ moderators: false, remove: true });
    expect(groupPowers('moderator', member('4', 'moderator'), '2')).toEqual({
      moderators: false,
      remove: false,
    });
    expect(groupPowers('moderator', member('1', 'owner'), '2')).toEqual({ moderators: false, remove: false });
  });

  it('offers a plain member nothing of the kind', () => {
    expect(groupPowers('member', member('3', 'member'), '2')).toEqual({ moderators: false, remove: false });
    expect(groupPowers(undefined, member('3', 'member'), '2')).toEqual({ moderators: false, remove: false });
  });
});

describe('leaving or removing from a group channel asks first', () => {
  const chat = () =>
    ({
      leaveChannel: vi.fn(() => Promise.resolve()),
      removeMember: vi.fn(() => Promise.resolve()),
    }) as unknown as Chat & {
      leaveChannel: ReturnType<typeof vi.fn>;
      removeMember: ReturnType<typeof vi.fn>;
    };
  const walks = (role: Member['role'], member_count: number) =>
    ({ id: '9', name: 'walks', role, member_count }) as Channel;
  const text = (c: { children: Parameters<typeof renderToStaticMarkup>[0] }) =>
    renderToStaticMarkup(c.children);

  it('says what leaving does for a member, the owner and the last one, and leaves only when confirmed', async () => {
    const c = chat();
    const ask = leaveGroup(c, walks('member', 3));
    expect(ask.title).toBe('Leave #walks?');
    expect(ask.confirm).toBe('Leave channel');
    expect(text(ask)).not.toContain('ownership');
    expect(c.leaveChannel).not.toHaveBeenCalled();
    await ask.onConfirm();
    expect(c.leaveChannel).toHaveBeenCalledWith('9');
    expect(text(leaveGroup(c, walks('owner', 3)))).toContain('ownership passes');
    expect(text(leaveGroup(c, walks('owner', 1)))).toContain('deleted with all its messages');
  });

  it('names the person removed, and removes only when confirmed', async () => {
    const c = chat();
    const carol = member('3', 'member').user;
    const ask = removeFromGroup(c, walks('owner', 3), carol);
    expect(ask.confirm).toBe('Remove u3');
    expect(c.removeMember).not.toHaveBeenCalled();
    await ask.onConfirm();
    expect(c.removeMember).toHaveBeenCalledWith('9', carol);
  });
});
