// Staying signed in. The refresh token (and the current access token) live in localStorage so a
// reload keeps the session. A refresh token works once, so two tabs must never refresh with the
// same one: refreshes are serialised across tabs with the Web Locks API, and a tab that waited
// takes the pair the other tab already stored instead of refreshing again.

import type { Tokens, User } from '../api/types';

const KEY = 'natter.session';
/** Refresh this long before the access token expires. */
const EARLY_MS = 60_000;

interface Stored {
  access: string;
  accessExpires: number;
  refresh: string;
  user: User;
}

type Listener = (user: User | null) => void;

function read(): Stored | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Stored) : null;
  } catch {
    return null;
  }
}

function write(s: Stored | null) {
  if (s) localStorage.setItem(KEY, JSON.stringify(s));
  else localStorage.removeItem(KEY);
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  return locks ? locks.request('natter.refresh', fn) : fn();
}

class Session {
  private current: Stored | null = read();
  private listeners = new Set<Listener>();
  private refreshing: Promise<string> | null = null;

  get user(): User | null {
    return this.current?.user ?? null;
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private notify() {
    this.listeners.forEach((fn) => fn(this.user));
  }

  /** Keeps the tokens from a sign-up, sign-in or refresh. */
  signedIn(tokens: Tokens) {
    this.current = {
      access: tokens.access_token,
      accessExpires: Date.now() + tokens.expires_in * 1000,
      refresh: tokens.refresh_token,
      user: tokens.user,
    };
    write(this.current);
    this.notify();
  }

  updateUser(user: User) {
    if (!this.current || this.current.user.id !== user.id) return;
    this.current = { ...this.current, user };
    write(this.current);
  }

  /** Forgets the session locally (after sign-out, or when the server ended it). */
  signedOutElsewhere() {
    this.current = null;
    write(null);
    this.notify();
  }

  /** A valid access token, refreshed if it is about to expire or `force` says it was refused. */
  async accessToken(force: boolean): Promise<string> {
    const s = this.current;
    if (!s) throw new Error('not signed in');
    if (!force && s.accessExpires - EARLY_MS > Date.now()) return s.access;
    this.refreshing ??= this.refresh(s.access).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async refresh(refused: string): Promise<string> {
    return withLock(async () => {
      // Another tab may have refreshed while this one waited for the lock.
      const stored = read();
      if (!stored) {
        this.signedOutElsewhere();
        throw new Error('signed out');
      }
      if (stored.access !== refused && stored.accessExpires - EARLY_MS > Date.now()) {
        this.current = stored;
        return stored.access;
      }
      const res = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: stored.refresh }),
      });
      if (res.status === 401 || res.status === 400) {
        this.signedOutElsewhere();
        throw new Error('the session ended; sign in again');
      }
      if (!res.ok) throw new Error(`refresh failed (${res.status})`);
      const tokens = (await res.json()) as Tokens;
      this.signedIn(tokens);
      return tokens.access_token;
    });
  }
}

export const session = new Session();
