// JSON Schemas shared by the routes: they validate input and make response serialisation fast.

export const userIdSchema = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f]+$' } as const;
export const topicSchema = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:/@-]+$' } as const;
/** A notification id or an SSE Last-Event-ID: digits only, and within what a JS number holds exactly. */
export const idString = { type: 'string', pattern: '^(0|[1-9][0-9]{0,14})$' } as const;

export const topicsQuery = (maxTopics: number) => ({ type: 'array', items: topicSchema, maxItems: maxTopics, uniqueItems: true }) as const;

/** The query of a stream, SSE or WebSocket: its topics, where to resume, and the token browsers cannot put in a header. */
export const streamQuery = (maxTopics: number) =>
  ({
    type: 'object',
    additionalProperties: false,
    properties: { topic: topicsQuery(maxTopics), lastEventId: idString, token: { type: 'string' } },
  }) as const;

export const errorSchema = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' } },
} as const;

const notificationProperties = {
  id: { type: 'integer' },
  title: { type: 'string' },
  body: { type: ['string', 'null'] },
  data: { type: ['object', 'null'], additionalProperties: true },
  type: { type: ['string', 'null'] },
  topic: { type: ['string', 'null'] },
  broadcast: { type: 'boolean' },
  critical: { type: 'boolean' },
  createdAt: { type: 'string' },
} as const;

/** What a publisher gets back: the stored notification and its recipients. */
export const storedNotificationSchema = {
  type: 'object',
  properties: { ...notificationProperties, users: { type: ['array', 'null'], items: { type: 'string' } } },
} as const;

/** What a subscriber sees in their history: no other recipients, plus their own read state. */
export const inboxItemSchema = {
  type: 'object',
  properties: { ...notificationProperties, read: { type: 'boolean' }, muted: { type: 'boolean' } },
} as const;

export const errorResponses = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 429: errorSchema } as const;
