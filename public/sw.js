// Herald's service worker: shows Web Push notifications and, on click, focuses an open tab (or opens
// the notification's url) and marks it read.
//
// How it gets a token: the page hands it one, since a service worker has no cookies of its own to
// send and cannot read the page's storage. After registering, the page posts
//   navigator.serviceWorker.controller.postMessage({ type: 'herald-token', token })
// (again whenever it renews the token); the worker keeps it in the Cache API, which outlives the
// worker being stopped between pushes. Without a token, a click still opens the page, and the
// notification stays unread until the page marks it.
'use strict';

const store = 'herald-sw';
const tokenKey = '/__herald/token';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('message', (event) => {
  const msg = event.data;
  if (!msg || msg.type !== 'herald-token' || typeof msg.token !== 'string') return;
  event.waitUntil(caches.open(store).then((c) => c.put(tokenKey, new Response(msg.token))));
});

async function token() {
  const res = await (await caches.open(store)).match(tokenKey);
  return res ? res.text() : null;
}

/** Where a click goes: the notification's url (or data.url), same-origin paths resolved; else the inbox. */
function target(n) {
  const url = n.url || (n.data && typeof n.data.url === 'string' ? n.data.url : null);
  try {
    return new URL(url || '/', self.location.origin).href;
  } catch {
    return new URL('/', self.location.origin).href;
  }
}

self.addEventListener('push', (event) => {
  let n;
  try {
    n = event.data ? event.data.json() : null;
  } catch {
    n = null;
  }
  if (!n) return;
  const ids = n.summary ? n.ids : [n.id];
  event.waitUntil(
    self.registration.showNotification(n.title || 'Notification', {
      body: n.body || '',
      icon: n.icon || undefined,
      // One system notification per Herald notification (or summary): a re-sent push replaces, not doubles.
      tag: n.summary ? `herald-summary-${ids[ids.length - 1]}` : `herald-${n.id}`,
      data: { ids, url: target(n) },
      requireInteraction: n.critical === true,
    }),
  );
});

/** Focuses an open tab of the app (taking it to `url`) or opens one. */
async function show(url) {
  const tabs = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const open = tabs.find((c) => c.url === url) || tabs.find((c) => new URL(c.url).origin === self.location.origin);
  if (!open) return self.clients.openWindow(url);
  await open.focus();
  if (open.url !== url && 'navigate' in open) await open.navigate(url).catch(() => {});
}

async function markRead(ids) {
  const t = await token();
  if (!t || !Array.isArray(ids)) return;
  await Promise.all(
    ids.map((id) =>
      fetch(`/notifications/${encodeURIComponent(id)}/read`, { method: 'POST', headers: { authorization: `Bearer ${t}` } }).catch(() => {}),
    ),
  );
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const { ids, url } = event.notification.data || {};
  // Apart, so that a refused window step does not keep it unread: the user did click. Chromium refuses
  // focus() and openWindow() once the click's window-interaction allowance is over, or the tab is gone.
  event.waitUntil(Promise.allSettled([show(url), markRead(ids)]));
});
