// Natter's service worker: shows a Web Push (sent by the notify service, decrypted by the
// browser) as a notification, and opens the channel at the message when it is clicked.
// Pushes carry {channel_id, guild_id, message_id, author_id, author, body, count}
// (docs/API.md, "Notifications").

/** The app's address of a message: /channels/{guild|@me}/{channel}/{message}. */
function messageUrl(data) {
  const guild = data.guild_id ?? '@me';
  return `/channels/${guild}/${data.channel_id}/${data.message_id}`;
}

self.addEventListener('push', (event) => {
  let data;
  try {
    data = event.data ? event.data.json() : null;
  } catch {
    data = null;
  }
  if (!data || !data.channel_id || !data.message_id) return;
  const title = data.author || 'Natter';
  event.waitUntil(
    self.registration.showNotification(title, {
      body: data.body ?? '',
      // One notification per channel: a newer push replaces the older one.
      tag: `channel-${data.channel_id}`,
      renotify: true,
      icon: '/favicon.svg',
      data: { url: messageUrl(data), ...data },
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url ?? '/', self.location.origin).href;
  event.waitUntil(
    (async () => {
      const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      for (const client of open) {
        if (new URL(client.url).origin === self.location.origin && 'focus' in client) {
          await client.focus();
          if ('navigate' in client) return client.navigate(url);
          return client;
        }
      }
      return self.clients.openWindow(url);
    })(),
  );
});

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
