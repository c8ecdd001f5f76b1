// The demo page: signs in (demo mode) or takes a pasted token, hands the token to <herald-inbox>
// (the component this page shows off) and publishes with the form.

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const params = new URLSearchParams(location.search);
/** The topics named in the address; without any, the demo's `deploys`, or with a pasted token the topics it allows by name. */
let topics = params.has('topic') ? params.getAll('topic').filter(Boolean) : ['deploys'];
const inbox = /** @type {import('./herald-inbox.js').HeraldInboxElement} */ ($('inbox'));

/** What the page knows; exposed as `window.heraldDemo` for the curious (and the browser tests). */
const demo = {
  /** @type {{ user: string, token: string, publishToken?: string } | null} */
  session: null,
  demoMode: false,
  inbox,
  /** Ids of every `notification` event the inbox's stream delivered, in order (to spot a doubled delivery). */
  received: [],
};
window.heraldDemo = demo;

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

function start() {
  const { user } = demo.session;
  $('who').textContent = `Signed in as ${user} · topics: ${topics.map((t) => `#${t}`).join(', ') || 'none'}`;
  $('me-label').textContent = `Me (${user})`;
  $('curl').textContent = [
    `curl -X POST ${location.origin}/notifications \\`,
    `  -H "Authorization: Bearer $KEY" \\`,
    `  -H 'content-type: application/json' \\`,
    `  -d '{"user":"${user}","title":"Hello from curl"}'`,
  ].join('\n');
  $('embed').textContent = [
    `<script type="module" src="${location.origin}/herald-inbox.js"></script>`,
    `<herald-inbox server="${location.origin}" token="…" topics="${topics.join(' ')}"></herald-inbox>`,
  ].join('\n');
  inbox.setAttribute('user', user);
  inbox.setAttribute('topics', topics.join(' '));
  // In demo mode a stream reopened after its token expired gets a fresh one.
  inbox.tokenProvider = () => (demo.demoMode ? newSession(user).then((s) => ((demo.session = s), s.token)) : demo.session.token);
  // The element starts its store a microtask after its settings change; this runs right after.
  queueMicrotask(() => inbox.store?.client.on('notification', (n) => demo.received.push(n.id)));
  // A page restored from the back/forward cache starts over, resuming from the id kept in sessionStorage.
  addEventListener('pageshow', (e) => {
    if (e.persisted) location.reload();
  });
}

function setupPublish() {
  const form = /** @type {HTMLFormElement} */ ($('publish'));
  const result = $('publish-result');
  form.addEventListener('change', () => {
    $('topic-field').hidden = form.elements.target.value !== 'topic';
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
      ...(f.type.value.trim() ? { type: f.type.value.trim() } : {}),
      ...(target === 'me' ? { user: demo.session.user } : target === 'topic' ? { topic } : { broadcast: true }),
    };
    $('send').disabled = true;
    try {
      let res = await publish(body);
      if (res.status === 401) {
        demo.session = await newSession(demo.session.user);
        res = await publish(body);
      }
      const sent = await res.json();
      if (!res.ok) throw new Error(sent.message ?? `HTTP ${res.status}`);
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

const publish = (body) =>
  fetch('/notifications', {
    method: 'POST',
    headers: { authorization: `Bearer ${demo.session.publishToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

function decodeClaims(token) {
  try {
    return JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  } catch {
    return undefined;
  }
}

/** A pasted token's own topics, when the address names none: the exact ones its `topics` claim allows (a prefix names no topic). */
function useTokenTopics(token) {
  if (params.has('topic')) return;
  const claim = decodeClaims(token)?.topics;
  topics = Array.isArray(claim) ? claim.filter((t) => typeof t === 'string' && !t.endsWith('*')) : [];
}

function signInWith(token) {
  const user = decodeClaims(token)?.sub;
  if (!user) return false;
  $('compose').hidden = true;
  document.querySelector('.intro').hidden = false;
  demo.session = { user, token };
  useTokenTopics(token);
  start();
  return true;
}

function askForToken() {
  $('signin').hidden = false;
  $('compose').hidden = true;
  document.querySelector('.intro').hidden = true;
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = e.target.elements.token.value.trim();
    if (!signInWith(token)) {
      $('signin-form').querySelector('input').setCustomValidity('That does not look like a subscriber token (no sub claim).');
      $('signin-form').reportValidity();
      return;
    }
    sessionStorage.setItem('herald:token', token);
    $('signin').hidden = true;
  });
}

async function main() {
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
  if (!kept || !signInWith(kept)) askForToken();
}

main().catch((err) => {
  $('who').textContent = `Could not start: ${err.message}`;
});
