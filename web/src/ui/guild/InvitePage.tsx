import { useEffect, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useChat } from '../../chat/hooks';
import { keys } from '../../chat/keys';
import { useGuilds, useNotice } from '../../guilds/hooks';
import type { InvitePreview } from '../../guilds/types';
import { errorText } from '../Modal';
import { GuildIcon } from './ServerRail';

/** The invite code of the page's path (`/invite/{code}`), as Discord's links are. */
export function inviteFromPath(): string | null {
  const m = /^\/invite\/([A-Za-z0-9]+)\/?$/.exec(window.location.pathname);
  return m ? m[1] : null;
}

/** Leaves the invite page for the app's own routes (the hash), keeping history sensible. */
function leaveInvitePage(hash: string) {
  window.history.replaceState(null, '', `/${hash}`);
  window.dispatchEvent(new PopStateEvent('popstate'));
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}

/** `/invite/{code}`: what the server is (name, icon, members), and Join. */
export function InvitePage({ code }: { code: string }) {
  const chat = useChat();
  const guilds = useGuilds();
  const [preview, setPreview] = useState<InvitePreview | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    let live = true;
    setPreview(null);
    setError(null);
    chat.guilds.preview(code).then(
      (p) => live && setPreview(p),
      (e) =>
        live &&
        setError(
          (e as { status?: number }).status === 404 ? 'This invite is invalid or has expired.' : errorText(e),
        ),
    );
    return () => {
      live = false;
    };
  }, [chat, code]);
  const already = preview && guilds.some((g) => g.id === preview.guild.id);
  const join = async () => {
    setBusy(true);
    setError(null);
    try {
      const g = await chat.guilds.join(code);
      const landing = preview?.channel_id ?? g.channels.find((c) => c.kind === 'text')?.id;
      leaveInvitePage(landing ? `#/c/${landing}` : `#/g/${g.id}`);
    } catch (e) {
      const status = (e as { status?: number; body?: { code?: string } }).body?.code;
      setError(status === 'banned' ? 'You are banned from this server.' : errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="empty-state invite-page">
      {!preview && !error && <p className="muted">Looking up the invite…</p>}
      {preview && (
        <div className="invite-card" aria-label="Invite">
          <GuildIcon guild={preview.guild} size={80} />
          <p className="muted">You have been invited to join</p>
          <h2>{preview.guild.name}</h2>
          <p className="muted small">
            {preview.guild.member_count} {preview.guild.member_count === 1 ? 'member' : 'members'}
          </p>
          {already ? (
            <button className="primary" onClick={() => leaveInvitePage(`#/g/${preview.guild.id}`)}>
              Open server
            </button>
          ) : (
            <button className="primary" onClick={() => void join()} disabled={busy}>
              Join {preview.guild.name}
            </button>
          )}
        </div>
      )}
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <button className="link" onClick={() => leaveInvitePage('#/')}>
        Not now
      </button>
    </div>
  );
}

/** A notice the store raised (a server the user was removed from), until dismissed. */
export function NoticeBanner() {
  const notice = useNotice();
  const qc = useQueryClient();
  if (!notice) return null;
  return (
    <div className="notice" role="alert">
      <span>{notice.text}</span>
      <button className="link" onClick={() => qc.setQueryData(keys.notice, null)}>
        Dismiss
      </button>
    </div>
  );
}
