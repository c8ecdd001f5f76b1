// The headless store bound to React: one store per (server, user), its snapshot through
// useSyncExternalStore (a new snapshot object only when something changed, so no extra renders).
import { useEffect, useState, useSyncExternalStore } from 'react';
import { HeraldInbox, type InboxSnapshot } from '@herald/client';

export function useHeraldInbox(server: string, user: string, getToken: () => Promise<string>): { inbox: HeraldInbox; snapshot: InboxSnapshot } {
  const [inbox] = useState(() => new HeraldInbox({ url: server, token: getToken, resumeKey: `herald:last-event-id:${user}` }));
  useEffect(() => {
    inbox.start();
    return () => inbox.stop();
  }, [inbox]);
  const snapshot = useSyncExternalStore(inbox.subscribe, inbox.getSnapshot);
  return { inbox, snapshot };
}
