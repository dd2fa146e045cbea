import { has, Permission, type PermissionName } from '../../guilds/permissions';

/** Each permission's name as Discord's settings show it, and what it allows here. */
export const PERMISSION_LABELS: Record<PermissionName, [string, string]> = {
  VIEW_CHANNEL: ['View channels', 'See channels, their messages, typing and read receipts'],
  SEND_MESSAGES: ['Send messages', 'Send (and edit their own) messages'],
  READ_MESSAGE_HISTORY: ['Read message history', 'Read what was said before they arrived'],
  MANAGE_MESSAGES: ['Manage messages', "Delete others' messages; not slowed by slowmode"],
  MANAGE_CHANNELS: ['Manage channels', 'Create, edit, reorder and delete channels'],
  MANAGE_ROLES: [
    'Manage roles',
    'Create, edit, give and take roles below their own; set channel permissions',
  ],
  MANAGE_GUILD: ['Manage server', "Change the server's name and icon; list and revoke invites"],
  KICK_MEMBERS: ['Kick members', 'Remove members below them'],
  BAN_MEMBERS: ['Ban members', 'Ban and unban; list bans'],
  MODERATE_MEMBERS: ['Time out members', 'Stop members below them from talking for a while'],
  CREATE_INSTANT_INVITE: ['Create invite', 'Invite people to the server'],
  CHANGE_NICKNAME: ['Change nickname', 'Change their own nickname'],
  MANAGE_NICKNAMES: ['Manage nicknames', "Change others' nicknames"],
  MENTION_EVERYONE: ['Mention @everyone', 'Notify everyone at once'],
  ATTACH_FILES: ['Attach files', 'Upload files'],
  EMBED_LINKS: ['Embed links', 'Links show a preview'],
  ADD_REACTIONS: ['Add reactions', 'React to messages'],
  VIEW_AUDIT_LOG: ['View audit log', "Read the record of the moderators' actions"],
  CONNECT: ['Connect', 'Join voice channels'],
  SPEAK: ['Speak', 'Talk in voice channels'],
  STREAM: ['Video', 'Share their screen or camera'],
  MUTE_MEMBERS: ['Mute members', 'Mute others in voice'],
  DEAFEN_MEMBERS: ['Deafen members', 'Deafen others in voice'],
  MOVE_MEMBERS: ['Move members', 'Move others between voice channels'],
  ADMINISTRATOR: ['Administrator', 'Every permission, in every channel, whatever the overwrites say'],
};

const ORDER = Object.keys(PERMISSION_LABELS) as PermissionName[];

/** A role's permissions: one switch each. `grantable` is what the editor may hand out. */
export function RolePermissions({
  value,
  grantable,
  onChange,
  disabled,
}: {
  value: bigint;
  grantable: bigint;
  onChange: (next: bigint) => void;
  disabled?: boolean;
}) {
  return (
    <ul className="permission-list">
      {ORDER.map((name) => {
        const bit = Permission[name];
        const on = has(value, bit);
        const [label, what] = PERMISSION_LABELS[name];
        return (
          <li key={name}>
            <label>
              <span>
                <strong>{label}</strong>
                <span className="muted small"> {what}</span>
              </span>
              <input
                type="checkbox"
                role="switch"
                name={name}
                checked={on}
                disabled={disabled || (!on && !has(grantable, bit))}
                onChange={(e) => onChange(e.target.checked ? value | bit : value & ~bit)}
              />
            </label>
          </li>
        );
      })}
    </ul>
  );
}

/** A channel overwrite's permissions: deny, inherit (/) or allow, each. */
export function OverwritePermissions({
  allow,
  deny,
  grantable,
  onChange,
}: {
  allow: bigint;
  deny: bigint;
  grantable: bigint;
  onChange: (allow: bigint, deny: bigint) => void;
}) {
  return (
    <ul className="permission-list">
      {ORDER.filter((n) => n !== 'ADMINISTRATOR').map((name) => {
        const bit = Permission[name];
        const state = has(allow, bit) ? 'allow' : has(deny, bit) ? 'deny' : 'inherit';
        const [label] = PERMISSION_LABELS[name];
        const set = (to: 'allow' | 'deny' | 'inherit') =>
          onChange(to === 'allow' ? allow | bit : allow & ~bit, to === 'deny' ? deny | bit : deny & ~bit);
        return (
          <li key={name}>
            <fieldset className="tri" disabled={!has(grantable, bit)}>
              <legend>{label}</legend>
              {(['deny', 'inherit', 'allow'] as const).map((to) => (
                <label key={to} className={`tri-${to}`}>
                  <input
                    type="radio"
                    name={`${name}-overwrite`}
                    checked={state === to}
                    onChange={() => set(to)}
                    aria-label={`${label}: ${to}`}
                  />
                  {to === 'deny' ? '✕' : to === 'allow' ? '✓' : '/'}
                </label>
              ))}
            </fieldset>
          </li>
        );
      })}
    </ul>
  );
}
