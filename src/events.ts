import { sseEvent } from './sse.js';
import { publicView, type StoredNotification, type UserEvent } from './types.js';

/**
 * One event on its way to clients, serialised lazily and at most once per format however many
 * streams receive it: fan-out to 10,000 streams costs one JSON.stringify, not 10,000.
 */
export class OutEvent {
  private jsonText: string | undefined;
  private sseText: string | undefined;
  private sseBuf: Buffer | undefined;
  private wsBuf: Buffer | undefined;

  constructor(
    /** The notification id for `notification` and `reload` events; none for per-user state events. */
    readonly id: number | undefined,
    readonly event: 'notification' | 'read' | 'deleted' | 'reload',
    private readonly payload: unknown,
  ) {}

  get json(): string {
    return (this.jsonText ??= JSON.stringify(this.payload));
  }

  get sse(): string {
    return (this.sseText ??= sseEvent(this.event, this.json, this.id));
  }

  /** The SSE frame as bytes, encoded once: every stream's socket writes this same buffer. */
  get sseBytes(): Buffer {
    return (this.sseBuf ??= Buffer.from(this.sse));
  }

  /**
   * The WebSocket frame's payload (the same JSON as the SSE `data:` line, wrapped with its name and id)
   * as bytes, encoded once: every socket sends this same buffer.
   */
  get ws(): Buffer {
    return (this.wsBuf ??= Buffer.from(`{"event":"${this.event}"${this.id === undefined ? '' : `,"id":${this.id}`},"data":${this.json}}`));
  }

  static notification(n: StoredNotification): OutEvent {
    return new OutEvent(n.id, 'notification', publicView(n));
  }

  static user(e: UserEvent): OutEvent {
    switch (e.kind) {
      case 'read':
        return new OutEvent(undefined, 'read', { ids: e.ids });
      case 'read-all':
        return new OutEvent(undefined, 'read', { all: true, upTo: e.upTo });
      case 'deleted':
        return new OutEvent(undefined, 'deleted', { id: e.id });
    }
  }

  /** Tells a client it is too far behind (or ahead) to catch up event by event: reload history, resume at `lastId`. */
  static reload(lastId: number, reason: string): OutEvent {
    return new OutEvent(lastId, 'reload', { reason, lastId });
  }
}
