// The SQLite writer thread (started by writer-thread.ts): the one connection that writes to each open
// database, with its group commits, fsyncs and commit checkpoints, all off the main thread's event loop.
import { parentPort, type MessagePort } from 'node:worker_threads';
import { openWriteConnection, SqliteWriter } from './sqlite-writer.js';
import type { Call, Failure, FromWriter, Open, Reply, ToWriter } from './writer-thread.js';

const describe = (err: unknown): Failure =>
  err instanceof Error ? { message: err.message, code: (err as { code?: string }).code } : { message: String(err) };

const send = (port: MessagePort, msg: FromWriter) => port.postMessage(msg);

/** Serves one database on its port until the main thread sends `close`. */
function serve({ file, sync, port }: Open): void {
  let db: ReturnType<typeof openWriteConnection>;
  let writer: SqliteWriter;
  try {
    db = openWriteConnection(file, sync);
    writer = new SqliteWriter(db);
  } catch (err) {
    send(port, { openFailed: describe(err) });
    port.close();
    return;
  }
  // Inside `group` each call is a savepoint: one that throws is undone alone and answered with its error.
  const one = db.transaction((c: Call) => (writer[c.method] as (...args: unknown[]) => unknown).apply(writer, c.args));
  const group = db.transaction((calls: Call[]) =>
    calls.map((c): Reply => {
      try {
        return { id: c.id, value: one(c) };
      } catch (err) {
        return { id: c.id, error: describe(err) };
      }
    }),
  );
  /** Commits the calls in one transaction (one fsync) and answers them; a failed commit fails them all. */
  const commit = (calls: Call[]): void => {
    let replies: Reply[];
    try {
      replies = group(calls);
    } catch (err) {
      const error = describe(err);
      replies = calls.map((c) => ({ id: c.id, error }));
    }
    send(port, replies);
  };
  const stop = () => {
    db.close();
    port.close();
  };
  // Each message is one group: the main thread fills the next one while this one commits.
  port.on('message', (msg: ToWriter) => (msg === 'close' ? stop() : commit(msg)));
  send(port, 'ready');
}

parentPort!.on('message', serve);
