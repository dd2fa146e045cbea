import { useEffect, useState, type DragEvent, type FormEvent } from 'react';
import { useQuery } from '@tanstack/react-query';
import { useChat, useUsers } from '../../chat/hooks';
import { keys } from '../../chat/keys';
import { displayName } from '../../chat/store';
import { idTime } from '../../chat/snowflake';
import { useGuild, useGuildChannels, useGuildMembers, useMyPermissions } from '../../guilds/hooks';
import { names, parse, Permission, rankOf } from '../../guilds/permissions';
import type { GuildState } from '../../guilds/store';
import type { AuditLogEntry, Role } from '../../guilds/types';
import { Avatar } from '../Avatar';
import { useAction } from '../dialogs';
import { useConfirm } from '../Confirm';
import { errorText, Modal } from '../Modal';
import { grantableBy, GuildChannelSettings, roleColor } from './ChannelDialogs';
import { inCategories } from './GuildSidebar';
import { MemberActionsDialog, memberName } from './MemberActions';
import { RolePermissions } from './PermissionEditor';
import { Overview } from './GuildOverview';

/** Any of these opens the server's settings (each tab needs its own). */
export const SETTINGS_PERMISSIONS =
  Permission.MANAGE_GUILD |
  Permission.MANAGE_ROLES |
  Permission.MANAGE_CHANNELS |
  Permission.KICK_MEMBERS |
  Permission.BAN_MEMBERS |
  Permission.MODERATE_MEMBERS |
  Permission.MANAGE_NICKNAMES |
  Permission.VIEW_AUDIT_LOG;

type Tab = 'overview' | 'roles' | 'channels' | 'members' | 'bans' | 'invites' | 'audit';

const TABS: Array<[Tab, string, bigint]> = [
  ['overview', 'Overview', Permission.MANAGE_GUILD],
  ['roles', 'Roles', Permission.MANAGE_ROLES],
  ['channels', 'Channels', Permission.MANAGE_CHANNELS],
  [
    'members',
    'Members',
    Permission.KICK_MEMBERS |
      Permission.BAN_MEMBERS |
      Permission.MODERATE_MEMBERS |
      Permission.MANAGE_ROLES |
      Permission.MANAGE_NICKNAMES,
  ],
  ['bans', 'Bans', Permission.BAN_MEMBERS],
  ['invites', 'Invites', Permission.MANAGE_GUILD],
  ['audit', 'Audit log', Permission.VIEW_AUDIT_LOG],
];

/** A server's settings: only the tabs the user's permissions open (the server refuses the rest). */
export function GuildSettings({ guild: given, onClose }: { guild: GuildState; onClose: () => void }) {
  const guild = useGuild(given.id) ?? given;
  const mine = useMyPermissions(guild.id);
  const tabs = TABS.filter(([, , need]) => (mine & need) !== 0n);
  const [tab, setTab] = useState<Tab>(tabs[0]?.[0] ?? 'overview');
  return (
    <Modal title={`${guild.name}: server settings`} onClose={onClose} wide>
      <div className="settings">
        <div role="tablist" aria-label="Server settings" className="tabs">
          {tabs.map(([id, label]) => (
            <button
              key={id}
              role="tab"
              aria-selected={tab === id}
              className={tab === id ? 'active' : ''}
              onClick={() => setTab(id)}
            >
              {label}
            </button>
          ))}
        </div>
        <div role="tabpanel" aria-label={tabs.find(([id]) => id === tab)?.[1]} className="tab-panel">
          {tab === 'overview' && <Overview guild={guild} />}
          {tab === 'roles' && <Roles guild={guild} mine={mine} />}
          {tab === 'channels' && <Channels guild={guild} />}
          {tab === 'members' && <Members guild={guild} />}
          {tab === 'bans' && <Bans guild={guild} />}
          {tab === 'invites' && <Invites guild={guild} />}
          {tab === 'audit' && <AuditLogView guild={guild} />}
        </div>
      </div>
    </Modal>
  );
}

const hex = (color: number) => `#${color.toString(16).padStart(6, '0')}`;

function Roles({ guild, mine }: { guild: GuildState; mine: bigint }) {
  const chat = useChat();
  const sorted = [...guild.roles].sort((a, b) => b.position - a.position);
  const [selected, setSelected] = useState<string | null>(null);
  const [dragged, setDragged] = useState<string | null>(null);
  const { run, busy, error } = useAction();
  const owner = guild.owner_id === chat.me.id;
  const myRank = rankOf(guild, guild.member);
  const editable = (r: Role) => owner || r.position < myRank;
  const role = sorted.find((r) => r.id === selected);
  const create = () =>
    void run(async () => {
      const r = await chat.guilds.createRole(guild.id, { name: 'new role' });
      setSelected(r.id);
    });
  /** Drag a role onto another: it takes that role's place (and those between shift). */
  const drop = (target: Role) => (e: DragEvent) => {
    e.preventDefault();
    const moving = sorted.find((r) => r.id === dragged);
    setDragged(null);
    if (!moving || moving.id === target.id || target.id === guild.id) return;
    void run(() => chat.guilds.updateRole(guild.id, moving.id, { position: target.position }));
  };
  const move = (r: Role, by: number) =>
    void run(() => chat.guilds.updateRole(guild.id, r.id, { position: Math.max(1, r.position + by) }));
  return (
    <div className="split">
      <div className="stack">
        <button className="primary" onClick={create} disabled={busy}>
          Create role
        </button>
        <ul className="role-list" aria-label="Roles, highest first">
          {sorted.map((r) => (
            <li
              key={r.id}
              draggable={r.id !== guild.id && editable(r)}
              onDragStart={() => setDragged(r.id)}
              onDragOver={(e) => e.preventDefault()}
              onDrop={drop(r)}
              className={r.id === selected ? 'active' : ''}
            >
              <button
                className="link grow"
                onClick={() => setSelected(r.id)}
                style={{ color: roleColor(r.color) }}
              >
                {r.name}
              </button>
              {r.id !== guild.id && editable(r) && (
                <>
                  <button className="icon small" aria-label={`Move ${r.name} up`} onClick={() => move(r, 1)}>
                    ↑
                  </button>
                  <button
                    className="icon small"
                    aria-label={`Move ${r.name} down`}
                    onClick={() => move(r, -1)}
                  >
                    ↓
                  </button>
                </>
              )}
            </li>
          ))}
        </ul>
        {error}
      </div>
      {role && (
        <RoleEditor
          key={role.id}
          guild={guild}
          role={role}
          grantable={grantableBy(guild, mine, chat.me.id)}
          editable={editable(role)}
        />
      )}
    </div>
  );
}

function RoleEditor({
  guild,
  role,
  grantable,
  editable,
}: {
  guild: GuildState;
  role: Role;
  grantable: bigint;
  editable: boolean;
}) {
  const chat = useChat();
  const everyone = role.id === guild.id;
  const [name, setName] = useState(role.name);
  const [color, setColor] = useState(role.color);
  const [hoist, setHoist] = useState(role.hoist);
  const [mentionable, setMentionable] = useState(role.mentionable);
  const [perms, setPerms] = useState(parse(role.permissions));
  const { run, busy, error } = useAction();
  const confirm = useConfirm();
  const [saved, setSaved] = useState(false);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    void run(async () => {
      await chat.guilds.updateRole(guild.id, role.id, {
        ...(!everyone && { name: name.trim(), color, hoist, mentionable }),
        permissions: String(perms),
      });
      setSaved(true);
    });
  };
  return (
    <>
      <form className="stack role-editor" onSubmit={submit} aria-label={`Edit ${role.name}`}>
        {!everyone && (
          <>
            <label>
              Role name
              <input
                name="role-name"
                required
                maxLength={100}
                value={name}
                disabled={!editable}
                onChange={(e) => setName(e.target.value)}
              />
            </label>
            <div className="row">
              <label>
                Colour
                <input
                  name="role-color"
                  type="color"
                  value={hex(color)}
                  disabled={!editable}
                  onChange={(e) => setColor(parseInt(e.target.value.slice(1), 16))}
                />
              </label>
              <label className="row">
                <input
                  type="checkbox"
                  name="hoist"
                  checked={hoist}
                  disabled={!editable}
                  onChange={(e) => setHoist(e.target.checked)}
                />
                Show members separately
              </label>
              <label className="row">
                <input
                  type="checkbox"
                  name="mentionable"
                  checked={mentionable}
                  disabled={!editable}
                  onChange={(e) => setMentionable(e.target.checked)}
                />
                Anyone may mention it
              </label>
            </div>
          </>
        )}
        <h3>Permissions</h3>
        <RolePermissions
          value={perms}
          grantable={grantable | parse(role.permissions)}
          onChange={setPerms}
          disabled={!editable}
        />
        {error}
        {saved && (
          <p className="ok" role="status">
            Saved.
          </p>
        )}
        <div className="row">
          <button className="primary" type="submit" disabled={busy || !editable}>
            Save role
          </button>
          {!everyone && editable && (
            <button
              type="button"
              className="danger"
              disabled={busy}
              onClick={() =>
                confirm.ask({
                  title: `Delete the role ${role.name}?`,
                  confirm: 'Delete role',
                  onConfirm: () => chat.guilds.deleteRole(guild.id, role.id),
                  children: (
                    <p>
                      Everyone who has {role.name} loses it, with the permissions it gave them. This cannot be
                      undone.
                    </p>
                  ),
                })
              }
            >
              Delete role
            </button>
          )}
        </div>
      </form>
      {/* Outside the form: the confirmation's buttons and Enter must not save the role. */}
      {confirm.dialog}
    </>
  );
}

function Channels({ guild }: { guild: GuildState }) {
  const chat = useChat();
  const channels = useGuildChannels(guild.id);
  const [editing, setEditing] = useState<string | null>(null);
  const [dragged, setDragged] = useState<string | null>(null);
  const { run, error } = useAction();
  const groups = inCategories(channels);
  /** Moves a channel to `index` in the group with `parent` (categories among categories). */
  const place = (id: string, parent: string | null, list: string[], index: number) => {
    const order = list.filter((x) => x !== id);
    order.splice(index, 0, id);
    const places = order.map((x, position) => ({ id: x, position, ...(x === id && { parent_id: parent }) }));
    void run(() => chat.guilds.reorderChannels(guild.id, places));
  };
  const categories = groups.flatMap((g) => (g.category ? [g.category.id] : []));
  const row = (
    id: string,
    label: string,
    parent: string | null,
    list: string[],
    i: number,
    isCategory: boolean,
  ) => (
    <li
      key={id}
      draggable
      onDragStart={() => setDragged(id)}
      onDragOver={(e) => e.preventDefault()}
      onDrop={(e) => {
        e.preventDefault();
        const d = dragged;
        setDragged(null);
        if (!d || d === id) return;
        const draggedIsCategory = categories.includes(d);
        if (draggedIsCategory !== isCategory) return;
        place(d, parent, list, i);
      }}
      className={isCategory ? 'category-row' : ''}
    >
      <span className="grow">{isCategory ? label.toUpperCase() : `# ${label}`}</span>
      <button
        className="icon small"
        aria-label={`Move ${label} up`}
        disabled={i === 0}
        onClick={() => place(id, parent, list, i - 1)}
      >
        ↑
      </button>
      <button
        className="icon small"
        aria-label={`Move ${label} down`}
        disabled={i === list.length - 1}
        onClick={() => place(id, parent, list, i + 1)}
      >
        ↓
      </button>
      <button className="small" onClick={() => setEditing(id)}>
        Edit
      </button>
    </li>
  );
  return (
    <div className="stack">
      <p className="muted small">Drag a channel (or use the arrows) to reorder it within its category.</p>
      <ul className="channel-order">
        {groups.map(({ category, channels: list }) => {
          const ids = list.map((c) => c.id);
          return [
            category &&
              row(category.id, category.name ?? '', null, categories, categories.indexOf(category.id), true),
            ...list.map((c, i) => row(c.id, c.name ?? '', category?.id ?? null, ids, i, false)),
          ];
        })}
      </ul>
      {error}
      {editing && <GuildChannelSettings guild={guild} channelId={editing} onClose={() => setEditing(null)} />}
    </div>
  );
}

function Members({ guild }: { guild: GuildState }) {
  const chat = useChat();
  const page = useGuildMembers(guild.id);
  const [managing, setManaging] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  useEffect(() => {
    void chat.guilds.loadMembers(guild.id);
  }, [chat, guild.id]);
  const shown = (page?.members ?? []).filter((m) =>
    `${memberName(m)} ${m.user.username}`.toLowerCase().includes(filter.toLowerCase()),
  );
  const managed = page?.members.find((m) => m.user.id === managing);
  return (
    <div className="stack">
      <label>
        Search members
        <input name="member-search" value={filter} onChange={(e) => setFilter(e.target.value)} />
      </label>
      <ul className="member-manage">
        {shown.map((m) => (
          <li key={m.user.id} data-user={m.user.username}>
            <Avatar user={m.user} size={24} />
            <span>
              {memberName(m)} <span className="muted small">@{m.user.username}</span>
            </span>
            {m.roles.map((id) => {
              const r = guild.roles.find((x) => x.id === id);
              return r ? (
                <span key={id} className="role" style={{ color: roleColor(r.color) }}>
                  {r.name}
                </span>
              ) : null;
            })}
            <button className="small" onClick={() => setManaging(m.user.id)}>
              Manage
            </button>
          </li>
        ))}
      </ul>
      {page && !page.complete && (
        <button className="link" onClick={() => void chat.guilds.loadMembers(guild.id, false, true)}>
          Show more members
        </button>
      )}
      {managed && (
        <MemberActionsDialog guildId={guild.id} member={managed} onClose={() => setManaging(null)} />
      )}
    </div>
  );
}

function Bans({ guild }: { guild: GuildState }) {
  const chat = useChat();
  const bans = useQuery({ queryKey: keys.guildBans(guild.id), queryFn: () => chat.guilds.bans(guild.id) });
  const { run, error } = useAction();
  if (bans.error) return <p className="form-error">{errorText(bans.error)}</p>;
  if (!bans.data) return <p className="muted">Loading bans…</p>;
  return (
    <div className="stack">
      {bans.data.length === 0 && <p className="muted">Nobody is banned.</p>}
      <ul className="member-manage" aria-label="Bans">
        {bans.data.map((b) => (
          <li key={b.user.id} data-user={b.user.username}>
            <Avatar user={b.user} size={24} />
            <span>
              {displayName(b.user)} <span className="muted small">{b.reason ? `: ${b.reason}` : ''}</span>
            </span>
            <button className="small" onClick={() => void run(() => chat.guilds.unban(guild.id, b.user.id))}>
              Revoke ban
            </button>
          </li>
        ))}
      </ul>
      {error}
    </div>
  );
}

function Invites({ guild }: { guild: GuildState }) {
  const chat = useChat();
  const users = useUsers();
  const invites = useQuery({
    queryKey: keys.guildInvites(guild.id),
    queryFn: () => chat.guilds.invites(guild.id),
  });
  const { run, error } = useAction();
  if (invites.error) return <p className="form-error">{errorText(invites.error)}</p>;
  if (!invites.data) return <p className="muted">Loading invites…</p>;
  return (
    <div className="stack">
      {invites.data.length === 0 && <p className="muted">No live invites.</p>}
      <ul className="member-manage" aria-label="Invites">
        {invites.data.map((i) => (
          <li key={i.code} data-code={i.code}>
            <code>{i.code}</code>
            <span className="muted small">
              by {displayName(users[i.inviter_id ?? ''])} · {i.uses}
              {i.max_uses ? `/${i.max_uses}` : ''} uses ·{' '}
              {i.expires_at ? `until ${new Date(i.expires_at).toLocaleString()}` : 'never expires'}
            </span>
            <button className="danger small" onClick={() => void run(() => chat.guilds.revokeInvite(i.code))}>
              Revoke
            </button>
          </li>
        ))}
      </ul>
      {error}
    </div>
  );
}

/** Each audit action's words (docs/API.md, "Servers"). */
export const AUDIT_ACTIONS: Record<number, string> = {
  1: 'updated the server',
  10: 'created a channel',
  11: 'updated a channel',
  12: 'deleted a channel',
  13: 'set channel permissions',
  14: 'changed channel permissions',
  15: 'removed channel permissions',
  20: 'kicked',
  22: 'banned',
  23: 'unbanned',
  24: 'updated member',
  25: 'changed the roles of',
  30: 'created a role',
  31: 'updated a role',
  32: 'deleted a role',
  40: 'created an invite',
  42: 'deleted an invite',
  72: 'deleted a message by',
};

function describeValue(key: string, v: unknown): string {
  if (v === undefined || v === null) return '—';
  if (key === 'permissions' || key === 'allow' || key === 'deny')
    return names(parse(String(v))).join(', ') || 'none';
  if (key === 'communication_disabled_until' && typeof v === 'number') return new Date(v).toLocaleString();
  if (Array.isArray(v))
    return v.map((x) => (typeof x === 'object' && x && 'name' in x ? String(x.name) : String(x))).join(', ');
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function AuditLogView({ guild }: { guild: GuildState }) {
  const chat = useChat();
  const [user, setUser] = useState('');
  const [action, setAction] = useState(0);
  const [older, setOlder] = useState<AuditLogEntry[]>([]);
  const [exhausted, setExhausted] = useState(false);
  const log = useQuery({
    queryKey: [...keys.auditLog(guild.id), user, action],
    queryFn: () =>
      chat.guilds.auditLog(guild.id, { user_id: user || undefined, action_type: action || undefined }),
  });
  const [known, setKnown] = useState<Record<string, string>>({});
  useEffect(() => {
    setOlder([]);
    setExhausted(false);
  }, [user, action]);
  useEffect(() => {
    if (!log.data) return;
    setKnown((old) => ({
      ...old,
      ...Object.fromEntries(log.data.users.map((u) => [u.id, displayName(u)])),
    }));
  }, [log.data]);
  if (log.error) return <p className="form-error">{errorText(log.error)}</p>;
  const entries = [...(log.data?.audit_log_entries ?? []), ...older];
  const who = (id?: string | null) =>
    id ? (known[id] ?? guild.roles.find((r) => r.id === id)?.name ?? id) : 'someone';
  const more = async () => {
    const last = entries[entries.length - 1];
    if (!last) return;
    const page = await chat.guilds.auditLog(guild.id, {
      user_id: user || undefined,
      action_type: action || undefined,
      before: last.id,
    });
    setKnown((old) => ({ ...old, ...Object.fromEntries(page.users.map((u) => [u.id, displayName(u)])) }));
    setOlder((o) => [...o, ...page.audit_log_entries]);
    if (page.audit_log_entries.length < 50) setExhausted(true);
  };
  return (
    <div className="stack">
      <div className="row">
        <label className="grow">
          By
          <select name="audit-user" value={user} onChange={(e) => setUser(e.target.value)}>
            <option value="">Everyone</option>
            {Object.entries(known).map(([id, name]) => (
              <option key={id} value={id}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label className="grow">
          Action
          <select name="audit-action" value={action} onChange={(e) => setAction(Number(e.target.value))}>
            <option value={0}>All actions</option>
            {Object.entries(AUDIT_ACTIONS).map(([n, label]) => (
              <option key={n} value={n}>
                {label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {!log.data && <p className="muted">Loading the audit log…</p>}
      {log.data && entries.length === 0 && <p className="muted">Nothing recorded yet.</p>}
      <ol className="audit-log" aria-label="Audit log">
        {entries.map((e) => (
          <li key={e.id} data-action={e.action_type}>
            <div>
              <strong>{who(e.user_id)}</strong> {AUDIT_ACTIONS[e.action_type] ?? `did ${e.action_type}`}{' '}
              {e.target_id && e.target_id !== guild.id && <strong>{who(e.target_id)}</strong>}
              <span className="muted small"> · {new Date(idTime(e.id)).toLocaleString()}</span>
            </div>
            {e.reason && <div className="muted small">Reason: {e.reason}</div>}
            {(e.changes ?? []).map((c, i) => (
              <div key={i} className="muted small">
                {c.key}: {describeValue(c.key, c.old_value)} → {describeValue(c.key, c.new_value)}
              </div>
            ))}
            {e.options?.delete_message_seconds ? (
              <div className="muted small">
                deleted their messages of the last {e.options.delete_message_seconds / 3600} hours
              </div>
            ) : null}
          </li>
        ))}
      </ol>
      {log.data && !exhausted && entries.length >= 50 && (
        <button className="link" onClick={() => void more()}>
          Older entries
        </button>
      )}
    </div>
  );
}
