// Subscribes to a public, a private and a presence channel, with Herald's replay plugin, and records
// every event for the test to read.
import { heraldReplay } from '/herald-pusher.js';

const port = Number(new URLSearchParams(location.search).get('port'));
const pusher = new window.Pusher('key1', {
  wsHost: '127.0.0.1',
  wsPort: port,
  forceTLS: false,
  enabledTransports: ['ws'],
  cluster: 'mt1',
  disableStats: true,
  channelAuthorization: { endpoint: '/broadcasting/auth', transport: 'ajax', params: { user: 'alice' } },
});
heraldReplay(pusher, { storage: sessionStorage });
window.pusher = pusher;
window.events = [];
window.subscribed = 0;
for (const name of ['news', 'private-orders.1', 'presence-room.1']) {
  const channel = pusher.subscribe(name);
  channel.bind_global((event, data) => {
    if (!event.startsWith('pusher:')) window.events.push({ channel: name, event, data });
  });
  channel.bind('pusher:subscription_succeeded', () => window.subscribed++);
}
