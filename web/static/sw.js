// Carnet's service worker (served at /sw.js, scope /): shows Web Push
// notifications and opens the page they point to. The payload (decrypted by
// the browser) names the class, the author and a link, with a short text in
// each language the node speaks; never what a post says.
'use strict';

self.addEventListener('install', () => { self.skipWaiting(); });
self.addEventListener('activate', (event) => { event.waitUntil(self.clients.claim()); });

/** Only paths on this site: a payload can never send the person elsewhere. */
function localPath(url) {
  return typeof url === 'string' && url.startsWith('/') && !url.startsWith('//') && !url.includes('\\') ? url : '/';
}

function text(value, fallback) {
  return typeof value === 'string' && value ? value.slice(0, 200) : fallback;
}

function pick(texts, preferred) {
  if (!texts || typeof texts !== 'object') return '';
  const languages = [...(self.navigator.languages || [self.navigator.language || ''])].map((l) => l.slice(0, 2));
  for (const lang of [...languages, preferred, 'en']) {
    if (typeof texts[lang] === 'string') return texts[lang];
  }
  return '';
}

self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  const title = text(data.title, 'Carnet');
  const options = {
    body: text(pick(data.body, data.lang), ''),
    tag: text(data.tag, undefined),
    icon: '/static/favicon.svg',
    data: { url: localPath(data.url) },
    requireInteraction: data.kind === 'alert',
    renotify: Boolean(data.tag),
  };
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const target = new URL(localPath(event.notification.data && event.notification.data.url), self.location.origin);
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).origin !== self.location.origin) continue;
      try {
        const focused = await client.focus();
        await (focused || client).navigate(target.href);
        return;
      } catch {
        // not controlled by this worker or cannot navigate: open a new window below
      }
    }
    await self.clients.openWindow(target.href);
  })());
});
