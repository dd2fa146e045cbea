import { useState } from 'react';
import { useChat } from '../../chat/hooks';
import { displayName } from '../../chat/store';
import { useGuild, useGuildMembers, useMyPermissions } from '../../guilds/hooks';
import { has, isTimedOut, Permission, permissionsIn, rankOf } from '../../guilds/permissions';
import type { GuildState } from '../../guilds/store';
import type { GuildMember } from '../../guilds/types';
import { useAction } from '../dialogs';
import { ConfirmDialog, useConfirm } from '../Confirm';
import { Modal } from '../Modal';
import { roleColor } from './ChannelDialogs';

/** Time-out lengths offered, as Discord offers them. */
export const TIMEOUTS: Array<[string, number]> = [
  ['60 seconds', 60_000],
  ['5 minutes', 5 * 60_000],
  ['10 minutes', 10 * 60_000],
  ['1 hour', 3_600_000],
  ['1 day', 86_400_000],
  ['1 week', 7 * 86_400_000],
];

/** "Delete messages of the last …" when banning. */
export const BAN_DELETES: Array<[string, number]> = [
  ["Don't delete any", 0],
  ['Previous hour', 3600],
  ['Previous 6 hours', 6 * 3600],
  ['Previous 12 hours', 12 * 3600],
  ['Previous 24 hours', 86400],
  ['Previous 3 days', 3 * 86400],
  ['Previous 7 days', 7 * 86400],
];

/** What the viewer may do to `member`: each needs its permission and a rank above theirs. */
export function useMemberPowers(guild: GuildState, member: GuildMember) {
  const chat = useChat();
  const mine = useMyPermissions(guild.id);
  const me = guild.member;
  const self = member.user.id === chat.me.id;
  const above = !self && member.user.id !== guild.owner_id && rankOf(guild, me) > rankOf(guild, member);
  // ADMINISTRATORs cannot be timed out.
  const admin = has(permissionsIn(guild, member), Permission.ADMINISTRATOR);
  return {
    roles: has(mine, Permission.MANAGE_ROLES) && (above || (self && guild.owner_id === chat.me.id)),
    nick: self ? has(mine, Permission.CHANGE_NICKNAME) : above && has(mine, Permission.MANAGE_NICKNAMES),
    timeout: above && !admin && has(mine, Permission.MODERATE_MEMBERS),
    kick: above && has(mine, Permission.KICK_MEMBERS),
    ban: above && has(mine, Permission.BAN_MEMBERS),
    myRank: rankOf(guild, me),
  };
}

export function memberName(m: GuildMember): string {
  return m.nick ?? displayName(m.user);
}

/** Everything a moderator may do to one member: roles, nickname, time-out, kick, ban. */
export function MemberActionsDialog({
  guildId,
  member: given,
  onClose,
}: {
  guildId: string;
  member: GuildMember;
  onClose: () => void;
}) {
  const guild = useGuild(guildId);
  // The member as events keep them (their roles change while the dialog is open).
  const member = useGuildMembers(guildId)?.members.find((m) => m.user.id === given.user.id) ?? given;
  if (!guild) return null;
  return <MemberActions guild={guild} member={member} onClose={onClose} />;
}

function MemberActions({
  guild,
  member,
  onClose,
}: {
  guild: GuildState;
  member: GuildMember;
  onClose: () => void;
}) {
  const chat = useChat();
  const [reason, setReason] = useState('');
  const [nick, setNick] = useState(member.nick ?? '');
  const [timeout, setTimeoutFor] = useState(TIMEOUTS[2][1]);
  const { run, busy, error } = useAction();
  const confirm = useConfirm();
  const [banning, setBanning] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  /** Roles being given or taken: shown so at once, until the server's answer says how it went. */
  const [pending, setPending] = useState<Record<string, boolean>>({});
  const powers = useMemberPowers(guild, member);
  const name = memberName(member);
  const act = (what: string, fn: () => Promise<unknown>) =>
    void run(async () => {
      setDone(null);
      await fn();
      setDone(what);
    });
  const timedOut = isTimedOut(member);
  const roles = [...guild.roles].filter((r) => r.id !== guild.id).sort((a, b) => b.position - a.position);
  return (
    <Modal title={`Manage ${name}`} onClose={onClose} wide>
      <div className="stack">
        <p className="muted">@{member.user.username}</p>
        {powers.timeout && (
          <label>
            Reason <span className="muted">(kept in the audit log)</span>
            <input name="reason" maxLength={512} value={reason} onChange={(e) => setReason(e.target.value)} />
          </label>
        )}
        {powers.roles && (
          <fieldset className="stack">
            <legend>Roles</legend>
            {roles.map((r) => {
              const on = pending[r.id] ?? member.roles.includes(r.id);
              return (
                <label key={r.id} className="row">
                  <input
                    type="checkbox"
                    name={`role-${r.name}`}
                    checked={on}
                    disabled={busy || (guild.owner_id !== chat.me.id && r.position >= powers.myRank)}
                    onChange={(e) => {
                      const give = e.target.checked;
                      setPending((p) => ({ ...p, [r.id]: give }));
                      act(`Roles saved`, () =>
                        chat.guilds
                          .updateMember(guild.id, member.user.id, {
                            roles: give ? [...member.roles, r.id] : member.roles.filter((x) => x !== r.id),
                          })
                          .finally(() =>
                            setPending((p) => {
                              const { [r.id]: _done, ...rest } = p;
                              return rest;
                            }),
                          ),
                      );
                    }}
                  />
                  <span style={{ color: roleColor(r.color) }}>{r.name}</span>
                </label>
              );
            })}
            {roles.length === 0 && <p className="muted small">This server has no roles yet.</p>}
          </fieldset>
        )}
        {powers.nick && (
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault();
              act('Nickname saved', () =>
                chat.guilds.updateMember(guild.id, member.user.id === chat.me.id ? '@me' : member.user.id, {
                  nick: nick.trim() || null,
                }),
              );
            }}
          >
            <label className="grow">
              Nickname
              <input name="nick" maxLength={32} value={nick} onChange={(e) => setNick(e.target.value)} />
            </label>
            <button type="submit" disabled={busy}>
              Save nickname
            </button>
          </form>
        )}
        {powers.timeout && (
          <div className="row">
            {timedOut ? (
              <button
                disabled={busy}
                onClick={() =>
                  act('Time-out removed', () =>
                    chat.guilds.updateMember(
                      guild.id,
                      member.user.id,
                      { communication_disabled_until: null },
                      reason,
                    ),
                  )
                }
              >
                Remove time-out
              </button>
            ) : (
              <>
                <label className="grow">
                  Time out for
                  <select
                    name="timeout"
                    value={timeout}
                    onChange={(e) => setTimeoutFor(Number(e.target.value))}
                  >
                    {TIMEOUTS.map(([label, ms]) => (
                      <option key={ms} value={ms}>
                        {label}
                      </option>
                    ))}
                  </select>
                </label>
                <button
                  disabled={busy}
                  onClick={() =>
                    act(`${name} is timed out`, () =>
                      chat.guilds.updateMember(
                        guild.id,
                        member.user.id,
                        { communication_disabled_until: Date.now() + timeout },
                        reason,
                      ),
                    )
                  }
                >
                  Time out
                </button>
              </>
            )}
          </div>
        )}
        {powers.kick && (
          <button
            className="danger"
            disabled={busy}
            onClick={() =>
              confirm.ask({
                title: `Kick ${name}?`,
                confirm: `Kick ${name}`,
                reason: { label: 'Reason for the kick', initial: reason },
                onConfirm: (why) => chat.guilds.kick(guild.id, member.user.id, why).then(onClose),
                children: (
                  <p>
                    {name} leaves {guild.name} and is told so. They can come back with a new invite.
                  </p>
                ),
              })
            }
          >
            Kick {name}
          </button>
        )}
        {powers.ban && (
          <button className="danger" disabled={busy} onClick={() => setBanning(true)}>
            Ban {name}
          </button>
        )}
        {!powers.roles && !powers.nick && !powers.timeout && !powers.kick && !powers.ban && (
          <p className="muted">You may not change anything about {name}.</p>
        )}
        {error}
        {done && (
          <p className="ok" role="status">
            {done}.
          </p>
        )}
      </div>
      {confirm.dialog}
      {banning && (
        <BanDialog
          guild={guild}
          member={member}
          reason={reason}
          onBanned={onClose}
          onClose={() => setBanning(false)}
        />
      )}
    </Modal>
  );
}

/** "Ban Carol?": with a reason and Discord's choice of how much of their recent history goes too. */
function BanDialog({
  guild,
  member,
  reason,
  onBanned,
  onClose,
}: {
  guild: GuildState;
  member: GuildMember;
  reason: string;
  onBanned: () => void;
  onClose: () => void;
}) {
  const chat = useChat();
  const [deleteSeconds, setDeleteSeconds] = useState(0);
  const name = memberName(member);
  return (
    <ConfirmDialog
      title={`Ban ${name}?`}
      confirm={`Ban ${name}`}
      reason={{ label: 'Reason for the ban', initial: reason }}
      onConfirm={(why) => chat.guilds.ban(guild.id, member.user.id, deleteSeconds, why).then(onBanned)}
      onClose={onClose}
    >
      <p>
        {name} leaves {guild.name} and is told so, and cannot come back by any invite until someone unbans
        them.
      </p>
      <label>
        Delete message history
        <select
          name="ban-delete"
          value={deleteSeconds}
          onChange={(e) => setDeleteSeconds(Number(e.target.value))}
        >
          {BAN_DELETES.map(([label, s]) => (
            <option key={s} value={s}>
              {label}
            </option>
          ))}
        </select>
      </label>
    </ConfirmDialog>
  );
}
