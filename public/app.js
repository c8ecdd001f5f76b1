// The demo inbox: signs in (demo mode) or takes a pasted token, then shows the user's notifications
// live through herald-client.js and keeps them in step with Herald's history API.
import { HeraldClient } from './herald-client.js';

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const params = new URLSearchParams(location.search);
/** The topics named in the address; without any, the demo's `deploys`, or with a pasted token the topics it allows by name. */
let topics = params.has('topic') ? params.getAll('topic').filter(Boolean) : ['deploys'];
const pageSize = 20;
const toastMs = 6000;
// On a phone, toasts share the screen with the page: fewer of them stay at once.
const maxToasts = () => (matchMedia('(max-width: 760px)').matches ? 2 : 4);

/** Everything the page knows; exposed as `window.heraldDemo` for the curious (and the browser tests). */
const demo = {
  /** @type {{ user: string, token: string, publishToken?: string } | null} */
  session: null,
  demoMode: false,
  /** @type {HeraldClient | null} */
  client: null,
  /** Loaded notifications by id. */
  items: new Map(),
  /** @type {string | null} */
  nextCursor: null,
  unreadOnly: false,
  unread: 0,
  /** Ids of every `notification` event this page received, in order (to spot a doubled delivery). */
  received: [],
};
window.heraldDemo = demo;

// ---------------------------------------------------------------------------------------------- API

async function newSession(user) {
  const res = await fetch('/demo/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // Demo mode grants the session the topics this page names (see the README's Security model).
    body: JSON.stringify({ ...(user ? { user } : {}), topics }),
  });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`demo session: HTTP ${res.status}`);
  return res.json();
}

/** A JSON request with the session's token; in demo mode an expired token is renewed once. */
async function api(method, path, { body, publish = false } = {}) {
  for (let attempt = 0; ; attempt++) {
    const token = publish ? demo.session.publishToken : demo.session.token;
    const res = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (res.status === 401 && demo.demoMode && attempt === 0) {
      demo.session = await newSession(demo.session.user);
      continue;
    }
    const text = await res.text();
    const json = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw Object.assign(new Error(json?.message ?? `HTTP ${res.status}`), { status: res.status });
    return json;
  }
}

const topicQuery = () => topics.map((t) => `topic=${encodeURIComponent(t)}`).join('&');

// --------------------------------------------------------------------------------------------- Feed

const feed = $('feed');
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

function ago(iso) {
  const s = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  if (s > -45) return 'just now';
  if (s > -3600) return relative.format(Math.round(s / 60), 'minute');
  if (s > -86400) return relative.format(Math.round(s / 3600), 'hour');
  return relative.format(Math.round(s / 86400), 'day');
}

function audienceLabel(n) {
  if (n.broadcast) return 'Everyone';
  if (n.topic) return `#${n.topic}`;
  return 'For you';
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function renderItem(n) {
  const title = el('p', { class: 'title' }, n.title);
  const markBtn = el('button', { class: 'btn small ghost mark', type: 'button', onclick: () => markRead(n.id) }, 'Mark read');
  markBtn.setAttribute('aria-label', `Mark “${n.title}” read`);
  const delBtn = el(
    'button',
    { class: 'btn small icon delete', type: 'button', 'aria-label': `Delete “${n.title}”`, title: 'Delete', onclick: () => remove(n.id) },
    trashIcon(),
  );
  const li = el(
    'li',
    { class: 'item', 'data-id': String(n.id) },
    el('span', { class: 'unread-dot', 'aria-hidden': 'true' }),
    el(
      'div',
      { class: 'content' },
      title,
      n.body ? el('p', { class: 'body' }, n.body) : null,
      el('p', { class: 'meta' }, el('span', { class: 'chip' }, audienceLabel(n)), el('time', { datetime: n.createdAt }, ago(n.createdAt))),
    ),
    el('div', { class: 'actions' }, markBtn, delBtn),
  );
  return li;
}

function trashIcon() {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', 'M9 3h6l1 2h4v2H4V5h4l1-2Zm-3 6h12l-1 12H7L6 9Zm4 2v8h1.5v-8H10Zm3.5 0v8H15v-8h-1.5Z');
  svg.append(path);
  return svg;
}

function showRead(li, read) {
  li.classList.toggle('unread', !read);
  const mark = li.querySelector('.mark');
  if (mark) mark.hidden = read;
}

/** Adds or updates one notification, keeping the list newest first. */
function upsert(n) {
  const known = demo.items.get(n.id);
  demo.items.set(n.id, { ...known, ...n });
  let li = feed.querySelector(`[data-id="${n.id}"]`);
  if (!li) {
    li = renderItem(n);
    const after = [...feed.children].find((c) => Number(c.dataset.id) < n.id);
    feed.insertBefore(li, after ?? null);
  }
  showRead(li, demo.items.get(n.id).read);
  updateEmpty();
}

function forget(id) {
  demo.items.delete(id);
  const li = feed.querySelector(`[data-id="${id}"]`);
  if (!li) return;
  // Keep keyboard users where they were: focus moves to the next item (or the heading), not to <body>.
  const hadFocus = li.contains(document.activeElement);
  const next = li.nextElementSibling ?? li.previousElementSibling;
  li.remove();
  if (hadFocus) (next?.querySelector('button:not([hidden])') ?? $('inbox-title')).focus();
  updateEmpty();
}

function updateEmpty() {
  const empty = $('empty');
  empty.hidden = feed.children.length > 0;
  if (!empty.hidden && demo.session) {
    empty.textContent = demo.unreadOnly
      ? 'Nothing unread. Nicely done.'
      : `No notifications yet.${demo.demoMode ? ' Send one with the form.' : ''}`;
  }
}

/** Loads the first page again (reset) or the next one, merging by id so live arrivals are never lost. */
async function loadHistory(reset) {
  const q = [`limit=${pageSize}`, topicQuery(), demo.unreadOnly ? 'unread=true' : '', !reset && demo.nextCursor ? `before=${demo.nextCursor}` : '']
    .filter(Boolean)
    .join('&');
  // What was shown when the request left: anything the answer lacks is gone (deleted, or filtered out);
  // what arrives live meanwhile is newer than the answer and stays.
  const shownBefore = reset ? [...demo.items.keys()] : [];
  const page = await api('GET', `/notifications?${q}`);
  const inPage = new Set(page.items.map((n) => n.id));
  for (const id of shownBefore) if (!inPage.has(id)) forget(id);
  for (const n of page.items) upsert(n);
  demo.nextCursor = page.nextCursor;
  $('more').hidden = page.nextCursor === null;
  updateEmpty();
}

// -------------------------------------------------------------------------------------------- Badge

let countTimer;
/** Asks Herald for the unread count; bursts of events cost one request. */
function refreshCount() {
  clearTimeout(countTimer);
  countTimer = setTimeout(async () => {
    try {
      const { count } = await api('GET', `/notifications/unread-count?${topicQuery()}`);
      setBadge(count);
    } catch {
      // The next event or reconnect asks again.
    }
  }, 50);
}

function setBadge(count) {
  demo.unread = count;
  const badge = $('badge');
  badge.hidden = count === 0;
  badge.textContent = count > 99 ? '99+' : String(count);
  $('bell-label').textContent = `Notifications: ${count} unread. ${demo.unreadOnly ? 'Showing unread only' : 'Show unread only'}`;
  document.title = count > 0 ? `(${count}) Herald · inbox` : 'Herald · inbox';
}

// ------------------------------------------------------------------------------------------ Actions

async function markRead(id) {
  await act(() => api('POST', `/notifications/${id}/read`));
  applyRead({ ids: [id] });
}

async function markAllRead() {
  const res = await act(() => api('POST', '/notifications/read-all'));
  if (res) applyRead({ all: true, upTo: res.upTo });
}

async function remove(id) {
  await act(() => api('DELETE', `/notifications/${id}`));
  forget(id);
  refreshCount();
}

/** Runs a request; a failure is shown, not thrown (an item deleted in another tab is simply gone). */
async function act(fn) {
  try {
    return await fn();
  } catch (err) {
    if (err.status !== 404) flash(`That did not work: ${err.message}`);
    return undefined;
  }
}

function applyRead(ev) {
  for (const [id, n] of demo.items) {
    if (ev.all ? id <= ev.upTo : ev.ids.includes(id)) {
      n.read = true;
      const li = feed.querySelector(`[data-id="${id}"]`);
      if (li) showRead(li, true);
    }
  }
  refreshCount();
}

// ------------------------------------------------------------------------------------------- Toasts

function toast(n) {
  const box = $('toasts');
  while (box.children.length >= maxToasts()) box.firstElementChild.remove();
  const close = el('button', { class: 'btn icon small', type: 'button', 'aria-label': `Dismiss “${n.title}”` }, '×');
  const t = el(
    'div',
    { class: 'toast', 'data-id': String(n.id) },
    el('div', { class: 'toast-text' }, el('p', { class: 'title' }, n.title), n.body ? el('p', { class: 'body' }, n.body) : null),
    close,
  );
  let timer;
  const dismiss = () => {
    clearTimeout(timer);
    t.classList.add('leaving');
    setTimeout(() => t.remove(), 200);
  };
  const arm = () => (timer = setTimeout(dismiss, toastMs));
  close.addEventListener('click', dismiss);
  // A toast being read (hovered or focused) stays until it is left.
  t.addEventListener('mouseenter', () => clearTimeout(timer));
  t.addEventListener('mouseleave', arm);
  t.addEventListener('focusin', () => clearTimeout(timer));
  t.addEventListener('focusout', arm);
  box.append(t);
  arm();
}

/** A one-line toast for the page's own messages. */
function flash(text) {
  toast({ id: 0, title: text, body: null });
}

// ------------------------------------------------------------------------------------------ Connect

const stateLabels = {
  idle: 'Starting…',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  closed: 'Disconnected',
};

function start() {
  const { user } = demo.session;
  $('who').textContent = `Signed in as ${user} · topics: ${topics.map((t) => `#${t}`).join(', ') || 'none'}`;
  $('me-label').textContent = `Me (${user})`;
  $('curl').textContent = curlExample(user);
  const client = new HeraldClient({
    // In demo mode a stream reopened after its token expired gets a fresh one.
    token: () => (demo.demoMode ? newSession(user).then((s) => ((demo.session = s), s.token)) : demo.session.token),
    topics,
    // One resume point per user: switching users in a tab must not skip the new user's notifications.
    resumeKey: `herald:last-event-id:${user}`,
  });
  demo.client = client;
  let historyLoaded = false;
  client.on('state', (state) => {
    const conn = $('conn');
    conn.dataset.state = state;
    conn.querySelector('.conn-label').textContent = stateLabels[state] ?? state;
    if (state === 'connected') {
      // The first page once: after that a reconnect resumes where the stream left off (Herald gives
      // every stream a resume point at once), so what was published meanwhile arrives as events.
      if (!historyLoaded) {
        loadHistory(true).then(
          () => (historyLoaded = true),
          (err) => flash(`Could not load history: ${err.message}`),
        );
      }
      refreshCount();
    }
  });
  client.on('notification', (n) => {
    demo.received.push(n.id);
    upsert({ ...n, read: false });
    toast(n);
    refreshCount();
  });
  client.on('read', applyRead);
  client.on('deleted', ({ id }) => {
    forget(id);
    refreshCount();
  });
  client.on('reload', () => {
    loadHistory(true).catch(() => {});
    refreshCount();
  });
  client.connect();
  // Closing on pagehide lets the browser keep the page in its back/forward cache; a page restored
  // from there starts over, resuming from the id kept in sessionStorage.
  addEventListener('pagehide', () => client.close());
  addEventListener('pageshow', (e) => {
    if (e.persisted) location.reload();
  });
}

function curlExample(user) {
  return [
    `curl -X POST ${location.origin}/notifications \\`,
    `  -H "Authorization: Bearer $KEY" \\`,
    `  -H 'content-type: application/json' \\`,
    `  -d '{"user":"${user}","title":"Hello from curl"}'`,
  ].join('\n');
}

// --------------------------------------------------------------------------------------- Publishing

function setupPublish() {
  const form = /** @type {HTMLFormElement} */ ($('publish'));
  const result = $('publish-result');
  const topicField = $('topic-field');
  form.addEventListener('change', () => {
    topicField.hidden = form.elements.target.value !== 'topic';
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = form.elements;
    const title = f.title.value.trim();
    if (!title) {
      result.textContent = 'A title is needed.';
      f.title.focus();
      return;
    }
    const target = f.target.value;
    const topic = f.topic.value.trim();
    if (target === 'topic' && !/^[A-Za-z0-9_.:/@-]{1,128}$/.test(topic)) {
      result.textContent = 'Topics are letters, digits and _ . : / @ -';
      f.topic.focus();
      return;
    }
    const body = {
      title,
      ...(f.body.value.trim() ? { body: f.body.value.trim() } : {}),
      type: 'demo',
      ...(target === 'me' ? { user: demo.session.user } : target === 'topic' ? { topic } : { broadcast: true }),
    };
    $('send').disabled = true;
    try {
      const sent = await api('POST', '/notifications', { body, publish: true });
      const unseen = target === 'topic' && !topics.includes(topic);
      result.textContent = unseen
        ? `Sent #${sent.id} to #${topic}. This page is not subscribed to it: add ?topic=${topic} to the address to see it.`
        : `Sent #${sent.id}.`;
      f.title.value = '';
      f.body.value = '';
    } catch (err) {
      result.textContent = `Not sent: ${err.message}`;
    } finally {
      $('send').disabled = false;
    }
  });
}

// ------------------------------------------------------------------------------------------ Sign-in

function decodeClaims(token) {
  try {
    return JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  } catch {
    return undefined;
  }
}

const decodeSub = (token) => decodeClaims(token)?.sub;

/** A pasted token's own topics, when the address names none: the exact ones its `topics` claim allows (a prefix names no topic). */
function useTokenTopics(token) {
  if (params.has('topic')) return;
  const claim = decodeClaims(token)?.topics;
  topics = Array.isArray(claim) ? claim.filter((t) => typeof t === 'string' && !t.endsWith('*')) : [];
}

function askForToken() {
  const inbox = document.querySelector('.inbox');
  $('signin').hidden = false;
  $('compose').hidden = true;
  inbox.hidden = true;
  $('conn').dataset.state = 'closed';
  $('conn').querySelector('.conn-label').textContent = 'Signed out';
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = e.target.elements.token.value.trim();
    const user = decodeSub(token);
    if (!user) return flash('That does not look like a subscriber token (no sub claim).');
    sessionStorage.setItem('herald:token', token);
    $('signin').hidden = true;
    inbox.hidden = false;
    demo.session = { user, token };
    useTokenTopics(token);
    start();
  });
}

async function main() {
  $('bell').addEventListener('click', () => {
    demo.unreadOnly = !demo.unreadOnly;
    $('bell').setAttribute('aria-pressed', String(demo.unreadOnly));
    setBadge(demo.unread);
    if (demo.session) loadHistory(true).catch(() => {});
  });
  $('read-all').addEventListener('click', markAllRead);
  $('more').addEventListener('click', () => loadHistory(false).catch((err) => flash(`Could not load more: ${err.message}`)));
  setInterval(() => {
    for (const t of feed.querySelectorAll('time')) t.textContent = ago(t.getAttribute('datetime'));
  }, 30_000);

  const session = await newSession(params.get('user') ?? localStorage.getItem('herald:demo-user') ?? undefined);
  if (session) {
    demo.demoMode = true;
    demo.session = session;
    localStorage.setItem('herald:demo-user', session.user);
    $('mode-tag').hidden = false;
    setupPublish();
    start();
    return;
  }
  const kept = sessionStorage.getItem('herald:token');
  const user = kept ? decodeSub(kept) : undefined;
  if (kept && user) {
    $('compose').hidden = true;
    demo.session = { user, token: kept };
    useTokenTopics(kept);
    start();
  } else {
    askForToken();
  }
}

main().catch((err) => {
  $('empty').textContent = `Could not start: ${err.message}`;
});
