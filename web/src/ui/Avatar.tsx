import { useState } from 'react';
import type { Status, User } from '../api/types';
import { displayName } from '../chat/store';

const COLORS = ['#5865f2', '#3ba55c', '#faa61a', '#ed4245', '#eb459e', '#00a8fc', '#9b59b6'];

function colorFor(id: string): string {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[h % COLORS.length];
}

const STATUS_LABEL: Record<Status, string> = {
  online: 'online',
  idle: 'idle',
  dnd: 'do not disturb',
  invisible: 'invisible',
  offline: 'offline',
};

export function statusLabel(s: Status): string {
  return STATUS_LABEL[s];
}

export function Avatar({
  user,
  size = 40,
  status,
}: {
  user: User | undefined;
  size?: number;
  status?: Status;
}) {
  const name = displayName(user);
  const safeUrl = user?.avatar_url && /^https?:\/\//i.test(user.avatar_url) ? user.avatar_url : null;
  // An image that does not load (an old avatar on another site, which the page's policy no
  // longer loads: avatars are uploaded to media now) shows the initial instead.
  const [failed, setFailed] = useState<string | null>(null);
  return (
    <span className="avatar" style={{ width: size, height: size }} aria-hidden="true">
      {safeUrl && failed !== safeUrl ? (
        <img
          src={safeUrl}
          alt=""
          width={size}
          height={size}
          referrerPolicy="no-referrer"
          onError={() => setFailed(safeUrl)}
        />
      ) : (
        <span
          className="avatar-letter"
          style={{ background: colorFor(user?.id ?? '0'), fontSize: size * 0.45 }}
        >
          {name.slice(0, 1).toUpperCase()}
        </span>
      )}
      {status && <span className={`presence-dot ${status}`} title={statusLabel(status)} />}
    </span>
  );
}
