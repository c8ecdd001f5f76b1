// <herald-inbox>: a bell, a popover inbox, toasts and preferences, in one custom element over the
// headless HeraldInbox store. Load it with one <script type="module" src="…/herald-inbox.js">.
import { HeraldInbox, type InboxItem, type InboxSnapshot } from './herald-client.js';

export { HeraldInbox } from './herald-client.js';

type Attrs = Record<string, string | boolean | undefined | null | ((e: Event) => void)>;

/** A DOM node in one line; `on…` props are listeners, false/null/undefined attributes are left out. */
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string | null | undefined | false)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else if (v !== false && v !== null && v !== undefined) el.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

const iconPaths = {
  bell: 'M12 2a1 1 0 0 1 1 1v1.07A7 7 0 0 1 19 11v4.59l1.7 1.7A1 1 0 0 1 20 19H4a1 1 0 0 1-.7-1.7L5 15.58V11a7 7 0 0 1 6-6.93V3a1 1 0 0 1 1-1Zm-2.5 18h5a2.5 2.5 0 0 1-5 0Z',
  checkAll: 'M1.3 12.7 2.7 11.3 7 15.6l1.4 1.4-1.4 1.4-5.7-5.7Zm20.3-7.4 1.4 1.4L12 17.7l-5.7-5.7 1.4-1.4 4.3 4.3 9.6-9.6Zm-4.6 0 1.4 1.4-6 6-1.4-1.4 6-6Z',
  check: 'M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4L9 16.2Z',
  trash: 'M9 3h6l1 2h4v2H4V5h4l1-2Zm-3 6h12l-1 12H7L6 9Zm4 2v8h1.5v-8H10Zm3.5 0v8H15v-8h-1.5Z',
  gear: 'M19.4 13a7.5 7.5 0 0 0 0-2l2.1-1.6-2-3.5-2.5 1a7.4 7.4 0 0 0-1.7-1L15 3h-4l-.4 2.9a7.4 7.4 0 0 0-1.7 1l-2.5-1-2 3.5L6.6 11a7.5 7.5 0 0 0 0 2l-2.1 1.6 2 3.5 2.5-1c.5.4 1.1.7 1.7 1L11 21h4l.4-2.9c.6-.3 1.2-.6 1.7-1l2.5 1 2-3.5-2.2-1.6ZM13 15.5a3.5 3.5 0 1 1 0-7 3.5 3.5 0 0 1 0 7Z',
  close: 'M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6 6.4 5Z',
  back: 'M20 11H7.8l5.6-5.6L12 4l-8 8 8 8 1.4-1.4L7.8 13H20v-2Z',
} as const;

function icon(name: keyof typeof iconPaths): SVGSVGElement {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', iconPaths[name]);
  svg.append(path);
  return svg;
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const exact = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

function ago(iso: string, now = Date.now()): string {
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  if (s > -45) return 'just now';
  if (s > -3600) return relative.format(Math.round(s / 60), 'minute');
  if (s > -86400) return relative.format(Math.round(s / 3600), 'hour');
  if (s > -86400 * 30) return relative.format(Math.round(s / 86400), 'day');
  return new Date(iso).toLocaleDateString();
}

function group(iso: string, now = new Date()): 'Today' | 'Yesterday' | 'Earlier' {
  const d = new Date(iso);
  const day = (x: Date) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const diff = Math.round((day(now) - day(d)) / 86_400_000);
  return diff <= 0 ? 'Today' : diff === 1 ? 'Yesterday' : 'Earlier';
}

/** A stable colour per type (or name): the same word is the same hue on every page. */
function hue(word: string): number {
  let x = 0;
  for (const ch of word) x = (x * 31 + ch.charCodeAt(0)) % 360;
  return x;
}

const isHttp = (u: string | null | undefined): u is string => typeof u === 'string' && /^https?:\/\//i.test(u);

/** The round thing at an item's left: the actor's avatar, the notification's icon, or a letter in its type's colour. */
function lead(n: InboxItem): HTMLElement {
  const word = n.actor?.name ?? n.type ?? n.topic ?? 'herald';
  const box = h('span', { class: 'lead', part: 'avatar', 'aria-hidden': 'true', 'data-type': n.type ?? undefined });
  box.style.background = `hsl(${hue(word)} 55% 48%)`;
  const letter = (word.trim()[0] ?? '•').toUpperCase();
  const src = isHttp(n.actor?.avatar) ? n.actor!.avatar! : isHttp(n.icon) ? n.icon : undefined;
  if (src) {
    const img = h('img', { src, alt: '', loading: 'lazy', referrerpolicy: 'no-referrer' });
    img.addEventListener('error', () => img.replaceWith(letter));
    box.append(img);
  } else {
    box.append(letter);
  }
  return box;
}

/** What a screen reader hears for an item: read state first, once. */
function itemLabel(n: InboxItem): string {
  return [n.read ? 'Read' : 'Unread', n.actor?.name, n.title, n.body, ago(n.createdAt)].filter(Boolean).join('. ');
}

// The styles, applied as a constructed stylesheet: a page with a strict Content-Security-Policy
// (no inline styles) still styles the shadow root.
const css = `
:host {
  --herald-accent: #5b5bd6;
  --herald-accent-fg: #fff;
  --herald-bg: #fff;
  --herald-fg: #1c2024;
  --herald-muted: #60646c;
  --herald-border: #e4e4e9;
  --herald-hover: #f4f4f6;
  --herald-unread-bg: #f5f5ff;
  --herald-badge-bg: #e5484d;
  --herald-badge-fg: #fff;
  --herald-banner-bg: #fff4d5;
  --herald-banner-fg: #5c3d00;
  --herald-radius: 12px;
  --herald-width: 400px;
  --herald-height: 560px;
  --herald-font: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  --herald-shadow: 0 12px 32px -8px rgb(0 0 0 / .18), 0 4px 10px -4px rgb(0 0 0 / .1);
  display: inline-block;
  position: relative;
  font-family: var(--herald-font);
  font-size: 14px;
  line-height: 1.45;
  color: var(--herald-fg);
}
:host([theme="dark"]) {
  --herald-accent: #8b8cf8; --herald-accent-fg: #111; --herald-bg: #18191b; --herald-fg: #edeef0;
  --herald-muted: #a0a3ab; --herald-border: #2e3035; --herald-hover: #222326; --herald-unread-bg: #1d1e2e;
  --herald-banner-bg: #3a2c05; --herald-banner-fg: #ffe7a3;
  --herald-shadow: 0 12px 32px -8px rgb(0 0 0 / .6), 0 4px 10px -4px rgb(0 0 0 / .5);
}
@media (prefers-color-scheme: dark) {
  :host(:not([theme="light"])) {
    --herald-accent: #8b8cf8; --herald-accent-fg: #111; --herald-bg: #18191b; --herald-fg: #edeef0;
    --herald-muted: #a0a3ab; --herald-border: #2e3035; --herald-hover: #222326; --herald-unread-bg: #1d1e2e;
    --herald-banner-bg: #3a2c05; --herald-banner-fg: #ffe7a3;
    --herald-shadow: 0 12px 32px -8px rgb(0 0 0 / .6), 0 4px 10px -4px rgb(0 0 0 / .5);
  }
}
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
button { font: inherit; color: inherit; cursor: pointer; }
:focus-visible { outline: 2px solid var(--herald-accent); outline-offset: 2px; }
svg { width: 18px; height: 18px; fill: currentColor; flex: none; }
.vh { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }

.bell {
  position: relative; display: grid; place-items: center; width: 40px; height: 40px;
  border: 1px solid transparent; border-radius: 50%; background: transparent; color: var(--herald-fg);
  transition: background .15s;
}
.bell:hover, .bell[aria-expanded="true"] { background: var(--herald-hover); }
.bell svg { width: 22px; height: 22px; }
.badge {
  position: absolute; top: 2px; right: 0; min-width: 18px; height: 18px; padding: 0 5px;
  border-radius: 9px; background: var(--herald-badge-bg); color: var(--herald-badge-fg);
  font-size: 11px; font-weight: 700; line-height: 18px; text-align: center;
  box-shadow: 0 0 0 2px var(--herald-bg); font-variant-numeric: tabular-nums;
}
.bell .offline-dot { position: absolute; bottom: 6px; right: 6px; width: 8px; height: 8px; border-radius: 50%; background: var(--herald-muted); box-shadow: 0 0 0 2px var(--herald-bg); }

.popover {
  position: absolute; z-index: 1000; top: calc(100% + 8px); right: 0;
  width: min(var(--herald-width), calc(100vw - 16px)); height: min(var(--herald-height), calc(100vh - 80px));
  display: flex; flex-direction: column; overflow: hidden;
  background: var(--herald-bg); color: var(--herald-fg);
  border: 1px solid var(--herald-border); border-radius: var(--herald-radius); box-shadow: var(--herald-shadow);
  animation: pop .14s ease-out;
}
:host([placement="left"]) .popover { right: auto; left: 0; }
.popover[popover] { position: fixed; inset: auto; margin: 0; padding: 0; }
:host([placement="left"]) .popover[popover] { right: auto; }
.toasts[popover] { inset: auto 16px 16px auto; margin: 0; padding: 0; border: 0; background: transparent; overflow: visible; }
@keyframes pop { from { opacity: 0; transform: translateY(-4px) scale(.98); } }
header { display: flex; align-items: center; gap: 4px; padding: 12px 12px 8px 16px; }
header h2 { flex: 1; margin: 0; font-size: 16px; font-weight: 650; letter-spacing: -.01em; }
.icon-btn {
  display: inline-grid; place-items: center; width: 32px; height: 32px; padding: 0;
  border: 0; border-radius: 8px; background: transparent; color: var(--herald-muted);
}
.icon-btn:hover { background: var(--herald-hover); color: var(--herald-fg); }
.icon-btn svg { width: 18px; height: 18px; }
.banner { margin: 0 12px 8px; padding: 8px 12px; border-radius: 8px; background: var(--herald-banner-bg); color: var(--herald-banner-fg); font-size: 13px; }
.tabs { display: flex; gap: 4px; padding: 0 12px; border-bottom: 1px solid var(--herald-border); }
.tab {
  position: relative; padding: 8px 10px 10px; border: 0; background: none; color: var(--herald-muted); font-weight: 550;
}
.tab[aria-selected="true"] { color: var(--herald-fg); }
.tab[aria-selected="true"]::after { content: ""; position: absolute; left: 8px; right: 8px; bottom: -1px; height: 2px; border-radius: 2px; background: var(--herald-accent); }
.tab:hover { color: var(--herald-fg); }
.tab .count { margin-left: 6px; padding: 0 6px; border-radius: 8px; background: var(--herald-hover); font-size: 12px; font-variant-numeric: tabular-nums; }
.scroller { flex: 1; overflow-y: auto; overscroll-behavior: contain; }
ul { list-style: none; margin: 0; padding: 0; }
.group { padding: 12px 16px 4px; font-size: 12px; font-weight: 600; color: var(--herald-muted); text-transform: uppercase; letter-spacing: .04em; }
.item {
  position: relative; display: flex; gap: 12px; padding: 12px 16px 12px 16px; cursor: default;
  border-bottom: 1px solid var(--herald-border); transition: background .12s;
}
.item[data-url] { cursor: pointer; }
.item:hover { background: var(--herald-hover); }
.item.unread { background: var(--herald-unread-bg); }
.item.unread:hover { background: var(--herald-hover); }
.item:focus-visible { outline-offset: -2px; }
.item .dot { position: absolute; left: 5px; top: 22px; width: 6px; height: 6px; border-radius: 50%; background: var(--herald-accent); }
.lead { flex: none; width: 36px; height: 36px; border-radius: 50%; display: grid; place-items: center; overflow: hidden; font-weight: 650; font-size: 14px; color: #fff; }
.lead img { width: 100%; height: 100%; object-fit: cover; }
.content { flex: 1; min-width: 0; }
.title { margin: 0; font-weight: 550; overflow-wrap: anywhere; }
.item:not(.unread) .title { font-weight: 450; }
.body { margin: 2px 0 0; color: var(--herald-muted); overflow-wrap: anywhere; display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; }
.meta { margin: 4px 0 0; display: flex; flex-wrap: wrap; gap: 4px 8px; align-items: center; font-size: 12px; color: var(--herald-muted); }
.chip { padding: 0 6px; border-radius: 6px; background: var(--herald-hover); border: 1px solid var(--herald-border); }
.actions { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px; }
.action {
  padding: 4px 10px; border-radius: 8px; border: 1px solid var(--herald-border); background: var(--herald-bg);
  font-size: 13px; font-weight: 550;
}
.action:first-child { background: var(--herald-accent); color: var(--herald-accent-fg); border-color: transparent; }
.action:hover { filter: brightness(.96); }
.tools { display: flex; flex-direction: column; gap: 2px; opacity: 0; transition: opacity .12s; }
.item:hover .tools, .item:focus-within .tools, .item:focus .tools { opacity: 1; }
@media (hover: none) { .tools { opacity: 1; } }
.tools .icon-btn { width: 28px; height: 28px; }
.tools svg { width: 16px; height: 16px; }
.empty { margin: 0; padding: 48px 24px; text-align: center; color: var(--herald-muted); }
.empty strong { display: block; margin-bottom: 4px; color: var(--herald-fg); font-weight: 600; }
.sentinel { height: 1px; }
.loading { padding: 12px; text-align: center; color: var(--herald-muted); font-size: 12px; }
.undo {
  display: flex; align-items: center; gap: 12px; margin: 8px; padding: 8px 8px 8px 14px; border-radius: 10px;
  background: var(--herald-fg); color: var(--herald-bg); font-size: 13px;
}
.undo span { flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.undo button { border: 0; border-radius: 6px; padding: 4px 10px; background: transparent; color: inherit; font-weight: 650; text-decoration: underline; }

.settings { flex: 1; overflow-y: auto; padding: 4px 16px 16px; }
.settings h3 { margin: 16px 0 6px; font-size: 13px; font-weight: 650; }
.settings p.hint { margin: 0 0 8px; color: var(--herald-muted); font-size: 12px; }
.settings label.row, .settings .row { display: flex; align-items: center; gap: 10px; padding: 6px 0; }
.settings .grid { display: grid; grid-template-columns: 1fr auto auto; gap: 4px 16px; align-items: center; }
.settings .grid .head { font-size: 12px; color: var(--herald-muted); }
.settings select, .settings input[type="time"] {
  font: inherit; color: inherit; background: var(--herald-bg); border: 1px solid var(--herald-border); border-radius: 8px; padding: 4px 8px;
}
.settings input[type="checkbox"] { width: 16px; height: 16px; accent-color: var(--herald-accent); }
.primary {
  margin-top: 16px; padding: 8px 16px; border: 0; border-radius: 8px; background: var(--herald-accent); color: var(--herald-accent-fg); font-weight: 600;
}
.status { margin: 8px 0 0; min-height: 1.4em; font-size: 12px; color: var(--herald-muted); }

.toasts { position: fixed; z-index: 1001; right: 16px; bottom: 16px; display: flex; flex-direction: column; gap: 8px; width: min(360px, calc(100vw - 32px)); pointer-events: none; }
.toast {
  pointer-events: auto; display: flex; gap: 12px; align-items: flex-start; padding: 12px 8px 12px 14px;
  background: var(--herald-bg); color: var(--herald-fg); border: 1px solid var(--herald-border);
  border-radius: var(--herald-radius); box-shadow: var(--herald-shadow); cursor: pointer; animation: slide .2s ease-out;
}
.toast .lead { width: 32px; height: 32px; font-size: 13px; }
.toast .content { flex: 1; }
.toast.leaving { opacity: 0; transform: translateY(6px); transition: opacity .2s, transform .2s; }
@keyframes slide { from { opacity: 0; transform: translateY(8px); } }

@media (max-width: 480px) {
  .popover, .popover[popover] { position: fixed; inset: 0 !important; width: 100%; height: 100%; border: 0; border-radius: 0; animation: sheet .18s ease-out; }
  @keyframes sheet { from { transform: translateY(12px); opacity: 0; } }
  .toasts, .toasts[popover] { inset: auto 8px 8px 8px; width: auto; }
  .tools { opacity: 1; }
}
@media (prefers-reduced-motion: reduce) { .popover, .toast { animation: none; } }
`;

const toastMs = 6000;
/**
 * The popover and the toasts go in the browser's top layer where it has one (the Popover API): an
 * ancestor with a transform, filter or backdrop-filter (a sticky blurred header, say) would otherwise
 * become the box a `position: fixed` sheet or toast is placed in.
 */
const topLayer = typeof HTMLElement !== 'undefined' && 'showPopover' in HTMLElement.prototype;
const maxToasts = 3;

interface Prefs {
  push: 'offline' | 'always' | 'never';
  quietHours: { start: string; end: string; timeZone: string } | null;
  types: Record<string, { inapp?: boolean; push?: boolean }>;
  topics: Record<string, { inapp?: boolean; push?: boolean }>;
}

export class HeraldInboxElement extends HTMLElement {
  static observedAttributes = ['server', 'token', 'topics', 'user'];

  #store: HeraldInbox | null = null;
  #tokenProvider: (() => string | Promise<string>) | undefined;
  #unsubscribe: (() => void)[] = [];
  #startQueued = false;
  #tab: 'all' | 'unread' = 'all';
  #rendered = new Map<number, { item: InboxItem; el: HTMLLIElement }>();
  #groups = new Map<string, HTMLLIElement>();
  #lastDeleted: { id: number; title: string } | null = null;
  #clock: ReturnType<typeof setInterval> | undefined;
  readonly #root: ShadowRoot;
  readonly #ui;

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: 'open' });
    this.#ui = this.#build();
  }

  /** A function returning a fresh subscriber token (it is asked again when one expires); wins over `token`. */
  get tokenProvider(): (() => string | Promise<string>) | undefined {
    return this.#tokenProvider;
  }

  set tokenProvider(fn: (() => string | Promise<string>) | undefined) {
    this.#tokenProvider = fn;
    this.#restartSoon();
  }

  /** The headless store under the element (null until it has a token). */
  get store(): HeraldInbox | null {
    return this.#store;
  }

  get open(): boolean {
    return !this.#ui.popover.hidden;
  }

  connectedCallback(): void {
    // Properties set right after the tag is created (tokenProvider) are in place a microtask later.
    this.#restartSoon();
    document.addEventListener('click', this.#outside, true);
    if (topLayer) this.#ui.toasts.showPopover();
    this.#clock = setInterval(() => this.#tick(), 30_000);
  }

  disconnectedCallback(): void {
    document.removeEventListener('click', this.#outside, true);
    this.#hide();
    if (topLayer && this.#ui.toasts.matches(':popover-open')) this.#ui.toasts.hidePopover();
    clearInterval(this.#clock);
    this.#stop();
  }

  attributeChangedCallback(): void {
    if (this.isConnected) this.#restartSoon();
  }

  #restartSoon(): void {
    if (this.#startQueued) return;
    this.#startQueued = true;
    queueMicrotask(() => {
      this.#startQueued = false;
      this.#stop();
      if (this.isConnected) this.#start();
    });
  }

  #start(): void {
    const token = this.#tokenProvider ?? this.getAttribute('token');
    if (!token) return;
    const user = this.getAttribute('user');
    const store = new HeraldInbox({
      url: this.getAttribute('server') ?? '',
      token,
      topics: (this.getAttribute('topics') ?? '').split(/[\s,]+/).filter(Boolean),
      // One resume point and one tab channel per user: a tab that switches users must not skip any.
      resumeKey: user ? `herald:last-event-id:${user}` : undefined,
    });
    this.#store = store;
    this.#unsubscribe.push(
      store.subscribe(() => this.#render(store.getSnapshot())),
      store.on('live', (n) => this.#live(n)),
      store.on('caughtUp', (items) => this.#caughtUp(items)),
    );
    store.start();
    this.#render(store.getSnapshot());
  }

  #stop(): void {
    for (const fn of this.#unsubscribe.splice(0)) fn();
    this.#store?.stop();
    this.#store = null;
    this.#rendered.clear();
    this.#groups.clear();
    this.#ui.list.replaceChildren();
  }

  // ----------------------------------------------------------------------------------------- shell

  #build() {
    if (typeof CSSStyleSheet !== 'undefined' && 'replaceSync' in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      this.#root.adoptedStyleSheets = [sheet];
    } else {
      this.#root.append(h('style', {}, css));
    }
    const badge = h('span', { class: 'badge', part: 'badge', 'aria-hidden': 'true', hidden: true });
    const offlineDot = h('span', { class: 'offline-dot', 'aria-hidden': 'true', hidden: true });
    const bell = h('button', { class: 'bell', part: 'bell', type: 'button', 'aria-haspopup': 'dialog', 'aria-expanded': 'false', 'aria-label': 'Notifications', onclick: () => this.toggle() }, icon('bell'), badge, offlineDot);
    const title = h('h2', { id: 'title' }, 'Notifications');
    const markAll = h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Mark all read', title: 'Mark all read', onclick: () => void this.#store?.markAllRead() }, icon('checkAll'));
    const gear = h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Preferences', title: 'Preferences', onclick: () => void this.#showSettings() }, icon('gear'));
    const close = h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Close', title: 'Close', onclick: () => this.close() }, icon('close'));
    const banner = h('p', { class: 'banner', part: 'banner', role: 'status', hidden: true });
    const tabAll = h('button', { class: 'tab', part: 'tab', role: 'tab', type: 'button', 'aria-selected': 'true', onclick: () => this.#setTab('all') }, 'All');
    const unreadCount = h('span', { class: 'count', 'aria-hidden': 'true' });
    const tabUnread = h('button', { class: 'tab', part: 'tab', role: 'tab', type: 'button', 'aria-selected': 'false', tabindex: '-1', onclick: () => this.#setTab('unread') }, 'Unread', unreadCount);
    const tabs = h('div', { class: 'tabs', part: 'tabs', role: 'tablist', 'aria-label': 'Show', onkeydown: (e) => this.#tabKeys(e as KeyboardEvent) }, tabAll, tabUnread);
    const list = h('ul', { role: 'list', 'aria-labelledby': 'title', onkeydown: (e) => this.#listKeys(e as KeyboardEvent) });
    const empty = h('p', { class: 'empty', part: 'empty', hidden: true });
    const loading = h('p', { class: 'loading', hidden: true }, 'Loading…');
    const sentinel = h('div', { class: 'sentinel' });
    const scroller = h('div', { class: 'scroller', part: 'list', role: 'tabpanel' }, list, empty, loading, sentinel);
    const undoText = h('span');
    const undo = h('div', { class: 'undo', part: 'undo', hidden: true }, undoText, h('button', { type: 'button', onclick: () => this.#undo() }, 'Undo'));
    const settings = h('section', { class: 'settings', part: 'settings', 'aria-label': 'Preferences', hidden: true });
    const popover = h(
      'div',
      { class: 'popover', part: 'popover', role: 'dialog', 'aria-labelledby': 'title', hidden: true, onkeydown: (e) => this.#popoverKeys(e as KeyboardEvent) },
      h('header', { part: 'header' }, title, markAll, gear, close),
      banner,
      tabs,
      scroller,
      undo,
      settings,
    );
    const toasts = h('div', { class: 'toasts', part: 'toasts', role: 'region', 'aria-label': 'New notifications', 'aria-live': 'polite', 'aria-relevant': 'additions' });
    if (topLayer) {
      popover.setAttribute('popover', 'manual');
      toasts.setAttribute('popover', 'manual');
    }
    this.#root.append(bell, popover, toasts);
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.#maybeLoadMore();
    }, { root: scroller }).observe(sentinel);
    return { bell, badge, offlineDot, title, markAll, gear, banner, tabs, tabAll, tabUnread, unreadCount, scroller, list, empty, loading, sentinel, undo, undoText, settings, popover, toasts };
  }

  // ---------------------------------------------------------------------------------- open / close

  toggle(): void {
    if (this.open) this.close();
    else this.show();
  }

  show(): void {
    const ui = this.#ui;
    ui.popover.hidden = false;
    if (topLayer) {
      ui.popover.showPopover();
      this.#place();
      addEventListener('resize', this.#place);
      addEventListener('scroll', this.#place, true);
    }
    ui.bell.setAttribute('aria-expanded', 'true');
    // What the toasts told is in the list now.
    ui.toasts.replaceChildren();
    this.#askDesktopPermission();
    this.#showInbox();
    (this.#items()[0] ?? ui.tabAll).focus();
    this.#maybeLoadMore();
  }

  close(): void {
    if (!this.open) return;
    this.#hide();
    this.#ui.bell.focus();
  }

  #hide(): void {
    const { popover, bell } = this.#ui;
    if (popover.hidden) return;
    popover.hidden = true;
    if (topLayer) {
      popover.hidePopover();
      removeEventListener('resize', this.#place);
      removeEventListener('scroll', this.#place, true);
    }
    bell.setAttribute('aria-expanded', 'false');
  }

  /** In the top layer the popover is placed by hand, under the bell (the phone layout ignores this). */
  #place = () => {
    const r = this.#ui.bell.getBoundingClientRect();
    const style = this.#ui.popover.style;
    style.top = `${r.bottom + 8}px`;
    if (this.getAttribute('placement') === 'left') style.left = `${Math.max(8, r.left)}px`;
    else style.right = `${Math.max(8, document.documentElement.clientWidth - r.right)}px`;
  };

  #outside = (e: Event) => {
    if (this.open && !e.composedPath().includes(this)) this.#hide();
  };

  // ------------------------------------------------------------------------------------- rendering

  #render(s: InboxSnapshot): void {
    const ui = this.#ui;
    const count = s.unreadCount ?? 0;
    ui.badge.hidden = count === 0;
    ui.badge.textContent = count > 99 ? '99+' : String(count);
    // The count is said once, in the bell's name; the badge is hidden from screen readers.
    ui.bell.setAttribute('aria-label', count > 0 ? `Notifications, ${count} unread` : 'Notifications');
    ui.unreadCount.textContent = count > 0 ? String(count) : '';
    ui.unreadCount.hidden = count === 0;
    ui.markAll.disabled = count === 0 && !s.items.some((n) => !n.read);
    const down = s.state === 'offline' || (s.state === 'reconnecting' && !s.online);
    ui.offlineDot.hidden = !down && s.state !== 'reconnecting';
    ui.banner.hidden = !(down || s.state === 'reconnecting');
    ui.banner.textContent = down ? 'You are offline. New notifications will show up when the connection is back.' : 'Reconnecting…';
    this.dataset.state = s.state;

    const shown = this.#tab === 'unread' ? s.items.filter((n) => !n.read) : s.items;
    this.#renderList(shown);
    ui.loading.hidden = !s.loading;
    ui.empty.hidden = shown.length > 0 || s.loading;
    ui.empty.replaceChildren(
      h('strong', {}, this.#tab === 'unread' ? 'You are all caught up' : 'No notifications yet'),
      this.#tab === 'unread' ? 'Nothing unread.' : 'New ones show up here as they happen.',
    );
    const pending = s.pendingDeletes.length > 0 && this.#lastDeleted && s.pendingDeletes.includes(this.#lastDeleted.id);
    ui.undo.hidden = !pending;
    if (pending) ui.undoText.textContent = `Deleted “${this.#lastDeleted!.title}”`;
    if (this.open) queueMicrotask(() => this.#maybeLoadMore());
  }

  /** Updates the list in place: items keep their element (and focus) as others come and go. */
  #renderList(items: readonly InboxItem[]): void {
    const list = this.#ui.list;
    const wanted: HTMLLIElement[] = [];
    const keep = new Set<number>();
    let lastGroup = '';
    for (const n of items) {
      const g = group(n.createdAt);
      if (g !== lastGroup) {
        lastGroup = g;
        let header = this.#groups.get(g);
        if (!header) this.#groups.set(g, (header = h('li', { class: 'group', role: 'presentation' }, h('span', { role: 'heading', 'aria-level': '3' }, g))));
        wanted.push(header);
      }
      keep.add(n.id);
      let r = this.#rendered.get(n.id);
      if (!r || r.item !== n) {
        const el = this.#renderItem(n, r?.el);
        this.#rendered.set(n.id, (r = { item: n, el }));
      }
      wanted.push(r.el);
    }
    const focused = this.#root.activeElement;
    let focusLost: number | undefined;
    for (const [id, r] of this.#rendered) {
      if (keep.has(id)) continue;
      if (focused && r.el.contains(focused)) focusLost = [...list.querySelectorAll('.item')].indexOf(r.el);
      r.el.remove();
      this.#rendered.delete(id);
    }
    for (const g of this.#groups.values()) if (!wanted.includes(g)) g.remove();
    wanted.forEach((el, i) => {
      if (list.children[i] !== el) list.insertBefore(el, list.children[i] ?? null);
    });
    // One item is in the Tab order (the focused one, else the first); arrows move between them.
    const els = this.#items();
    if (!els.some((e) => e.tabIndex === 0) && els[0]) els[0].tabIndex = 0;
    if (focusLost !== undefined) (els[Math.min(focusLost, els.length - 1)] ?? this.#ui.tabAll).focus();
  }

  #renderItem(n: InboxItem, old: HTMLLIElement | undefined): HTMLLIElement {
    const store = this.#store!;
    const markBtn = n.read
      ? null
      : h('button', { class: 'icon-btn mark', type: 'button', title: 'Mark read', 'aria-label': `Mark “${n.title}” read`, onclick: (e) => (e.stopPropagation(), void store.markRead(n.id)) }, icon('check'));
    const delBtn = h('button', { class: 'icon-btn delete', type: 'button', title: 'Delete', 'aria-label': `Delete “${n.title}”`, onclick: (e) => (e.stopPropagation(), this.#delete(n)) }, icon('trash'));
    const time = h('time', { datetime: n.createdAt, title: exact.format(new Date(n.createdAt)) }, ago(n.createdAt));
    const chip = n.broadcast ? 'Everyone' : n.topic ? `#${n.topic}` : null;
    const actions = (n.actions ?? []).map((a) =>
      h('button', { class: 'action', part: 'action', type: 'button', onclick: (e) => (e.stopPropagation(), this.#follow(n, a.url)) }, a.label),
    );
    const li = h(
      'li',
      {
        class: n.read ? 'item' : 'item unread',
        part: n.read ? 'item' : 'item item-unread',
        'data-id': String(n.id),
        'data-type': n.type ?? undefined,
        'data-url': n.url ?? undefined,
        tabindex: old?.tabIndex === 0 ? '0' : '-1',
        'aria-label': itemLabel(n),
        onclick: () => this.#activate(n),
      },
      n.read ? null : h('span', { class: 'dot', 'aria-hidden': 'true' }),
      lead(n),
      h(
        'div',
        { class: 'content' },
        h('p', { class: 'title' }, n.title),
        n.body ? h('p', { class: 'body' }, n.body) : null,
        h('p', { class: 'meta' }, n.actor?.name ? h('span', {}, n.actor.name) : null, time, chip ? h('span', { class: 'chip' }, chip) : null),
        actions.length > 0 ? h('div', { class: 'actions' }, ...actions) : null,
      ),
      h('div', { class: 'tools' }, markBtn, delBtn),
    );
    if (old) {
      const hadFocus = this.#root.activeElement === old;
      old.replaceWith(li);
      if (hadFocus) li.focus();
    }
    return li;
  }

  #items(): HTMLLIElement[] {
    return [...this.#ui.list.querySelectorAll<HTMLLIElement>('li.item')];
  }

  #tick(): void {
    for (const t of this.#root.querySelectorAll('time')) t.textContent = ago(t.dateTime);
    for (const { item, el } of this.#rendered.values()) el.setAttribute('aria-label', itemLabel(item));
  }

  #setTab(tab: 'all' | 'unread'): void {
    this.#tab = tab;
    this.#ui.tabAll.setAttribute('aria-selected', String(tab === 'all'));
    this.#ui.tabUnread.setAttribute('aria-selected', String(tab === 'unread'));
    this.#ui.tabAll.tabIndex = tab === 'all' ? 0 : -1;
    this.#ui.tabUnread.tabIndex = tab === 'unread' ? 0 : -1;
    if (this.#store) this.#render(this.#store.getSnapshot());
  }

  #maybeLoadMore(): void {
    const s = this.#store?.getSnapshot();
    if (!s || !this.open || !s.hasMore || s.loading) return;
    // In the Unread tab, stop once every unread one is shown.
    if (this.#tab === 'unread' && s.unreadCount !== null && s.items.filter((n) => !n.read).length >= s.unreadCount) return;
    const { scroller, sentinel } = this.#ui;
    if (sentinel.getBoundingClientRect().top <= scroller.getBoundingClientRect().bottom + 200) void this.#store!.loadMore();
  }

  // ---------------------------------------------------------------------------------------- actions

  #activate(n: InboxItem): void {
    if (n.url) this.#follow(n, n.url);
    else if (!n.read) void this.#store?.markRead(n.id);
  }

  /** Marks read and opens `url`, unless a `herald-open` listener calls preventDefault() (a client-side router, say). */
  #follow(n: InboxItem, url: string): void {
    if (!n.read) void this.#store?.markRead(n.id);
    const go = this.dispatchEvent(new CustomEvent('herald-open', { detail: { notification: n, url }, cancelable: true, bubbles: true, composed: true }));
    if (go && (url.startsWith('/') || isHttp(url))) location.assign(url);
  }

  #delete(n: InboxItem): void {
    this.#lastDeleted = { id: n.id, title: n.title };
    this.#store?.remove(n.id);
  }

  #undo(): void {
    if (!this.#lastDeleted) return;
    this.#store?.undoRemove(this.#lastDeleted.id);
    const id = this.#lastDeleted.id;
    this.#lastDeleted = null;
    queueMicrotask(() => this.#rendered.get(id)?.el.focus());
  }

  // ------------------------------------------------------------------------------------- keyboard

  #popoverKeys(e: KeyboardEvent): void {
    if (e.key === 'Escape') {
      e.preventDefault();
      this.close();
    } else if (e.key === 'Tab') {
      // Focus stays in the popover while it is open.
      const focusables = [...this.#ui.popover.querySelectorAll<HTMLElement>('button, [tabindex="0"], input, select, a[href]')].filter(
        (el) => !(el as HTMLButtonElement).disabled && el.offsetParent !== null && el.tabIndex >= 0,
      );
      const first = focusables[0];
      const last = focusables[focusables.length - 1];
      const active = this.#root.activeElement;
      if (e.shiftKey && active === first) {
        e.preventDefault();
        last?.focus();
      } else if (!e.shiftKey && active === last) {
        e.preventDefault();
        first?.focus();
      }
    }
  }

  #listKeys(e: KeyboardEvent): void {
    const items = this.#items();
    const at = items.findIndex((el) => el === this.#root.activeElement || el.contains(this.#root.activeElement));
    const target = e.target as HTMLElement;
    let next: number | undefined;
    if (e.key === 'ArrowDown') next = Math.min(at + 1, items.length - 1);
    else if (e.key === 'ArrowUp') next = Math.max(at - 1, 0);
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = items.length - 1;
    else if ((e.key === 'Enter' || e.key === ' ') && target.classList.contains('item')) {
      e.preventDefault();
      const r = this.#rendered.get(Number(target.dataset.id));
      if (r) this.#activate(r.item);
      return;
    } else if (e.key === 'Delete' && target.classList.contains('item')) {
      const r = this.#rendered.get(Number(target.dataset.id));
      if (r) this.#delete(r.item);
      return;
    }
    if (next === undefined || !items[next]) return;
    e.preventDefault();
    for (const el of items) el.tabIndex = -1;
    items[next].tabIndex = 0;
    items[next].focus();
  }

  #tabKeys(e: KeyboardEvent): void {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    const tab = this.#tab === 'all' ? 'unread' : 'all';
    this.#setTab(tab);
    (tab === 'all' ? this.#ui.tabAll : this.#ui.tabUnread).focus();
  }

  // --------------------------------------------------------------------------------------- toasts

  #live(n: InboxItem): void {
    this.#desktop(n);
    if (!this.open) this.#toast(n.title, n.body, lead(n), n.id);
  }

  #caughtUp(items: InboxItem[]): void {
    if (this.open) return;
    // After a catch-up, one summary rather than a toast per missed notification.
    if (items.length === 1) this.#toast(items[0]!.title, items[0]!.body, lead(items[0]!), items[0]!.id);
    else this.#toast(`${items.length} new notifications while you were away`, null, null, undefined);
  }

  #toast(title: string, body: string | null, leadEl: HTMLElement | null, id: number | undefined): void {
    const box = this.#ui.toasts;
    while (box.children.length >= maxToasts) box.firstElementChild!.remove();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const dismiss = () => {
      clearTimeout(timer);
      t.classList.add('leaving');
      setTimeout(() => t.remove(), 200);
    };
    const arm = () => (timer = setTimeout(dismiss, toastMs));
    const t = h(
      'div',
      {
        class: 'toast',
        part: 'toast',
        'data-id': id === undefined ? undefined : String(id),
        onclick: () => {
          dismiss();
          this.show();
          if (id !== undefined) this.#rendered.get(id)?.el.focus();
        },
      },
      leadEl,
      h('div', { class: 'content' }, h('p', { class: 'title' }, title), body ? h('p', { class: 'body' }, body) : null),
      h('button', { class: 'icon-btn', type: 'button', 'aria-label': `Dismiss “${title}”`, onclick: (e) => (e.stopPropagation(), dismiss()) }, icon('close')),
    );
    // A toast being read (hovered or focused) stays until it is left.
    t.addEventListener('mouseenter', () => clearTimeout(timer));
    t.addEventListener('mouseleave', arm);
    t.addEventListener('focusin', () => clearTimeout(timer));
    t.addEventListener('focusout', arm);
    box.append(t);
    arm();
  }

  // ----------------------------------------------------------------------------- desktop notifications

  #desktopWanted(): boolean {
    return this.hasAttribute('desktop-notifications') && typeof Notification !== 'undefined';
  }

  #askDesktopPermission(): void {
    // Opening the inbox is a user gesture, which browsers require before they ask.
    if (this.#desktopWanted() && Notification.permission === 'default') void Notification.requestPermission();
  }

  #desktop(n: InboxItem): void {
    if (!this.#desktopWanted() || document.visibilityState !== 'hidden' || Notification.permission !== 'granted') return;
    const shown = new Notification(n.title, { body: n.body ?? undefined, icon: n.icon ?? n.actor?.avatar ?? undefined, tag: `herald-${n.id}` });
    shown.onclick = () => {
      window.focus();
      this.show();
    };
  }

  // ------------------------------------------------------------------------------------- preferences

  #showInbox(): void {
    const ui = this.#ui;
    ui.settings.hidden = true;
    ui.markAll.hidden = false;
    ui.tabs.hidden = false;
    ui.scroller.hidden = false;
    ui.title.textContent = 'Notifications';
  }

  async #showSettings(): Promise<void> {
    const ui = this.#ui;
    const store = this.#store;
    if (!store) return;
    ui.tabs.hidden = true;
    ui.markAll.hidden = true;
    ui.scroller.hidden = true;
    ui.settings.hidden = false;
    ui.title.textContent = 'Preferences';
    const back = h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Back to notifications', onclick: () => (this.#showInbox(), ui.gear.focus()) }, icon('back'));
    ui.settings.replaceChildren(back, h('p', { class: 'status', role: 'status' }, 'Loading…'));
    back.focus();
    const prefs = await store.request<Prefs>('GET', '/preferences');
    if (ui.settings.hidden) return;
    if (!prefs) {
      ui.settings.replaceChildren(back, h('p', { class: 'status', role: 'status' }, 'Preferences are not available on this server.'));
      return;
    }
    this.#renderSettings(prefs, back);
  }

  #renderSettings(prefs: Prefs, back: HTMLElement): void {
    const s = this.#store!.getSnapshot();
    // Offer what this inbox has seen, and what the document already names.
    const types = [...new Set([...Object.keys(prefs.types), ...s.items.map((n) => n.type).filter((t): t is string => !!t)])].sort();
    const topics = [...new Set([...Object.keys(prefs.topics), ...this.#store!.client.topics, ...s.items.map((n) => n.topic).filter((t): t is string => !!t)])].sort();
    const status = h('p', { class: 'status', role: 'status' });
    const push = h('select', { id: 'push-mode' });
    for (const [value, label] of [['offline', 'When I am not online'], ['always', 'Always'], ['never', 'Never']] as const) {
      push.append(h('option', { value, selected: prefs.push === value }, label));
    }
    const quiet = h('input', { type: 'checkbox', id: 'quiet', checked: prefs.quietHours !== null });
    const start = h('input', { type: 'time', 'aria-label': 'Quiet hours start', value: prefs.quietHours?.start ?? '22:00' });
    const end = h('input', { type: 'time', 'aria-label': 'Quiet hours end', value: prefs.quietHours?.end ?? '07:00' });
    const timeZone = prefs.quietHours?.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
    const toggles: { kind: 'types' | 'topics'; key: string; channel: 'inapp' | 'push'; box: HTMLInputElement }[] = [];
    const grid = (kind: 'types' | 'topics', keys: string[], label: (k: string) => string) => {
      if (keys.length === 0) return null;
      const g = h('div', { class: 'grid' }, h('span', { class: 'head' }, kind === 'types' ? 'Type' : 'Topic'), h('span', { class: 'head' }, 'In-app'), h('span', { class: 'head' }, 'Push'));
      for (const key of keys) {
        g.append(h('span', {}, label(key)));
        for (const channel of ['inapp', 'push'] as const) {
          const box = h('input', { type: 'checkbox', 'aria-label': `${label(key)}: ${channel === 'inapp' ? 'in-app' : 'push'}`, checked: prefs[kind][key]?.[channel] !== false });
          toggles.push({ kind, key, channel, box });
          g.append(box);
        }
      }
      return g;
    };
    const save = async () => {
      const doc: Prefs = {
        push: push.value as Prefs['push'],
        quietHours: quiet.checked ? { start: start.value, end: end.value, timeZone } : null,
        types: {},
        topics: {},
      };
      for (const t of toggles) {
        // Absent means on: only what is turned off is written, plus what the document already said.
        if (!t.box.checked || prefs[t.kind][t.key]?.[t.channel] !== undefined) (doc[t.kind][t.key] ??= {})[t.channel] = t.box.checked;
      }
      status.textContent = 'Saving…';
      const saved = await this.#store?.request<Prefs>('PUT', '/preferences', { body: doc });
      status.textContent = saved ? 'Saved.' : `Not saved: ${this.#store?.getSnapshot().error ?? 'unknown error'}`;
      if (saved) prefs = saved;
    };
    const parts: (Node | string | null)[] = [
      back,
      h('h3', {}, 'Push notifications'),
      h('label', { class: 'row', for: 'push-mode' }, 'Send push', push),
      h('h3', {}, 'Quiet hours'),
      h('p', { class: 'hint' }, `No push between these times (${timeZone}); critical ones still come.`),
      h('label', { class: 'row' }, quiet, 'Quiet hours'),
      h('div', { class: 'row' }, start, '–', end),
      types.length > 0 ? h('h3', {}, 'By type') : null,
      grid('types', types, (k) => k),
      topics.length > 0 ? h('h3', {}, 'By topic') : null,
      grid('topics', topics, (k) => `#${k}`),
      h('button', { class: 'primary', type: 'button', onclick: () => void save() }, 'Save preferences'),
      status,
    ];
    this.#ui.settings.replaceChildren(...parts.filter((p): p is Node | string => p !== null));
  }
}

if (typeof customElements !== 'undefined' && !customElements.get('herald-inbox')) customElements.define('herald-inbox', HeraldInboxElement);

declare global {
  interface HTMLElementTagNameMap {
    'herald-inbox': HeraldInboxElement;
  }
}
