// The SQLite writer thread (started by writer-thread.ts): the one connection that writes to each open
// database, with its group commits, fsyncs and commit checkpoints, all off the main thread's event loop.
import { parentPort, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { openWriteConnection, SqliteWriter } from './sqlite-writer.js';
import type { Call, Failure, FromWriter, Open, Reply, ToWriter } from './writer-thread.js';

/** Calls committed in one transaction at most, so the first caller of a long queue is not kept waiting long. */
const maxGroup = 1000;

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
  // Every call that arrived while the last transaction committed joins the next one: the main thread
  // keeps sending while this thread waits for the disk, so one fsync serves all of them.
  port.on('message', (first: ToWriter) => {
    if (first === 'close') return stop();
    const calls = first;
    while (calls.length < maxGroup) {
      const next = receiveMessageOnPort(port)?.message as ToWriter | undefined;
      if (next === undefined) break;
      if (next === 'close') {
        commit(calls);
        return stop();
      }
      calls.push(...next);
    }
    commit(calls);
  });
  send(port, 'ready');
}

parentPort!.on('message', serve);
