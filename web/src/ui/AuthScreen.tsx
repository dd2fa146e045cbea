import { useState, type FormEvent } from 'react';
import { anonymous, ApiError } from '../api/rest';
import type { Tokens } from '../api/types';
import { session } from '../auth/session';
import { ChatIcon } from './icons';

export function AuthScreen() {
  const [mode, setMode] = useState<'sign-in' | 'sign-up'>('sign-in');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const signUp = mode === 'sign-up';

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setFields({});
    try {
      const body: Record<string, string> = { username: username.trim(), password };
      if (signUp && displayName.trim()) body.display_name = displayName.trim();
      const tokens = await anonymous<Tokens>(`/api/v1/auth/${mode}`, body);
      session.signedIn(tokens);
    } catch (err) {
      if (err instanceof ApiError) {
        setError(err.message);
        setFields(err.fields);
      } else {
        setError('Cannot reach the server. Check your connection and try again.');
      }
    } finally {
      setBusy(false);
    }
  }

  const field = (name: string) =>
    fields[name] ? (
      <span className="field-error" id={`${name}-error`} role="alert">
        {fields[name]}
      </span>
    ) : null;

  return (
    <main className="auth">
      <form className="auth-card" onSubmit={submit} aria-labelledby="auth-title">
        <div className="brand" aria-hidden="true">
          <ChatIcon />
        </div>
        <h1 id="auth-title">{signUp ? 'Create an account' : 'Welcome back'}</h1>
        <p className="muted">{signUp ? 'Join Natter in a few seconds.' : 'Sign in to Natter.'}</p>
        <label>
          Username
          <input
            name="username"
            autoComplete="username"
            autoCapitalize="none"
            spellCheck={false}
            required
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            aria-invalid={!!fields.username}
            aria-describedby={fields.username ? 'username-error' : undefined}
          />
          {field('username')}
        </label>
        {signUp && (
          <label>
            Display name <span className="muted">(optional)</span>
            <input
              name="display_name"
              autoComplete="nickname"
              value={displayName}
              onChange={(e) => setDisplayName(e.target.value)}
              aria-invalid={!!fields.display_name}
            />
            {field('display_name')}
          </label>
        )}
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={signUp ? 'new-password' : 'current-password'}
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            aria-invalid={!!fields.password}
            aria-describedby={fields.password ? 'password-error' : undefined}
          />
          {field('password')}
        </label>
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <button className="primary" type="submit" disabled={busy}>
          {signUp ? 'Sign up' : 'Sign in'}
        </button>
        <p className="muted small">
          {signUp ? 'Already have an account? ' : 'New here? '}
          <button type="button" className="link" onClick={() => setMode(signUp ? 'sign-in' : 'sign-up')}>
            {signUp ? 'Sign in' : 'Create an account'}
          </button>
        </p>
      </form>
    </main>
  );
}
