import { describe, expect, it } from 'vitest';
import type { Member } from '../api/types';
import { groupPowers } from './MemberList';

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
