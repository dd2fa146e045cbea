// Web Push for this browser: after the user allows notifications, register the service worker
// (/sw.js), subscribe with the server's VAPID key (from the notify service) and hand the
// subscription to auth, which keeps it; notify pushes mentions and DMs to it while the user is
// away (docs/API.md, "Notifications").

import { call } from '../api/rest';

/** base64url (the VAPID key's encoding) to bytes, as PushManager.subscribe wants them. */
export function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const padded = base64url.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((base64url.length + 3) % 4);
  const raw = atob(padded);
  const bytes = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

export function pushSupported(): boolean {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

/** Registers the service worker (it shows pushes even with the page closed). */
export async function registerWorker(): Promise<ServiceWorkerRegistration> {
  return navigator.serviceWorker.register('/sw.js', { scope: '/' });
}

/**
 * Asks for permission, subscribes this browser and tells auth. `notifyUrl` is the notify
 * service's origin (discovery's `notify_url`).
 */
export async function enablePush(notifyUrl: string): Promise<'granted' | 'denied' | 'unsupported'> {
  if (!pushSupported()) return 'unsupported';
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') return 'denied';
  const registration = await registerWorker();
  const res = await fetch(`${notifyUrl}/api/v1/push/vapid`);
  const { public_key } = (await res.json()) as { public_key: string };
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: keyBytes(public_key),
  });
  const json = subscription.toJSON();
  await call<void>('/api/v1/users/@me/push-subscriptions', {
    method: 'POST',
    body: { endpoint: json.endpoint, keys: json.keys },
  });
  return 'granted';
}

/** Stops pushes to this browser. */
export async function disablePush(): Promise<void> {
  if (!pushSupported()) return;
  const registration = await navigator.serviceWorker.getRegistration('/');
  const subscription = await registration?.pushManager.getSubscription();
  if (!subscription) return;
  await call<void>('/api/v1/users/@me/push-subscriptions', {
    method: 'DELETE',
    body: { endpoint: subscription.endpoint },
  }).catch(() => undefined);
  await subscription.unsubscribe();
}
