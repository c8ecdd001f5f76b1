// The headless store bound to Vue: a shallowRef that takes each new (immutable) snapshot.
import { onScopeDispose, shallowRef, type ShallowRef } from 'vue';
import { HeraldInbox, type InboxSnapshot } from '@herald/client';

export function useHeraldInbox(server: string, user: string, getToken: () => Promise<string>): { inbox: HeraldInbox; snapshot: ShallowRef<InboxSnapshot> } {
  const inbox = new HeraldInbox({ url: server, token: getToken, resumeKey: `herald:last-event-id:${user}` });
  const snapshot = shallowRef(inbox.getSnapshot());
  const unsubscribe = inbox.subscribe(() => (snapshot.value = inbox.getSnapshot()));
  inbox.start();
  onScopeDispose(() => {
    unsubscribe();
    inbox.stop();
  });
  return { inbox, snapshot };
}
