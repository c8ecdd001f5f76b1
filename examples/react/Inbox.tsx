// Two ways in React: the <herald-inbox> element as it is, or your own UI over the headless store.
import { useEffect, useRef } from 'react';
import '@herald/client/inbox'; // defines <herald-inbox>
import type { HeraldInboxElement } from '@herald/client/inbox';
import { useHeraldInbox } from './useHeraldInbox';

declare module 'react' {
  namespace JSX {
    interface IntrinsicElements {
      'herald-inbox': React.DetailedHTMLProps<React.HTMLAttributes<HTMLElement>, HTMLElement> & { server?: string; user?: string; topics?: string };
    }
  }
}

const getToken = () => fetch('/api/herald-token').then((r) => r.text()); // your app's own login-backed route

/** The drop-in element; the token function is a property, so it can fetch a fresh token when one expires. */
export function Bell({ user }: { user: string }) {
  const ref = useRef<HeraldInboxElement>(null);
  useEffect(() => {
    if (ref.current) ref.current.tokenProvider = getToken;
  }, []);
  return <herald-inbox ref={ref} server="https://herald.example.com" user={user} topics="deploys" />;
}

/** Your own markup over the same store. */
export function UnreadList({ user }: { user: string }) {
  const { inbox, snapshot } = useHeraldInbox('https://herald.example.com', user, getToken);
  return (
    <section>
      <h2>Unread ({snapshot.unreadCount ?? '…'})</h2>
      {snapshot.state === 'offline' && <p role="status">Offline</p>}
      <ul>
        {snapshot.items.filter((n) => !n.read).map((n) => (
          <li key={n.id}>
            {n.title} <button onClick={() => inbox.markRead(n.id)}>Mark read</button>
          </li>
        ))}
      </ul>
      {snapshot.hasMore && <button onClick={() => inbox.loadMore()}>Load more</button>}
    </section>
  );
}
