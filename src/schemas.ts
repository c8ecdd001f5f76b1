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

/** A character of a URL: none of whitespace or control characters. */
const urlChar = '[^\\s\\u0000-\\u001f\\u007f]';
/**
 * Where a notification or an action leads: an absolute http(s) URL, or a path on the app's own origin.
 * Not `//host` (a protocol-relative URL leaves the origin). Each may be null, the same as leaving it out.
 */
const linkPattern = `^(https?://[^\\s/?#]${urlChar}*|/(?![/\\\\])${urlChar}*)$`;
/** An image: an absolute http(s) URL only. */
const imagePattern = `^https?://[^\\s/?#]${urlChar}*$`;
/** What each pattern asks for, in words: a refusal says this rather than quoting the expression. */
export const patternMeaning: Readonly<Record<string, string>> = {
  [linkPattern]: 'must be an absolute http:// or https:// URL or a path starting with "/"',
  [imagePattern]: 'must be an absolute http:// or https:// URL',
};
const link = (nullable: boolean) =>
  ({ type: nullable ? ['string', 'null'] : 'string', minLength: 1, maxLength: 2048, pattern: linkPattern }) as const;
const image = (nullable: boolean) => ({ type: nullable ? ['string', 'null'] : 'string', maxLength: 2048, pattern: imagePattern }) as const;

/**
 * The presentation fields as a publish may send them (contract A). Nullable types rather than anyOf,
 * so a refusal names the field and the rule (`body/actions/0/url must be an absolute ... URL`).
 */
export const presentationInput = {
  url: link(true),
  icon: image(true),
  actor: {
    type: ['object', 'null'],
    additionalProperties: false,
    required: ['name'],
    properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, avatar: image(false) },
  },
  actions: {
    type: ['array', 'null'],
    maxItems: 3,
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['label', 'url'],
      properties: { label: { type: 'string', minLength: 1, maxLength: 64 }, url: link(false) },
    },
  },
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
  url: { type: ['string', 'null'] },
  icon: { type: ['string', 'null'] },
  actor: {
    type: ['object', 'null'],
    properties: { name: { type: 'string' }, avatar: { type: 'string' } },
  },
  actions: {
    type: ['array', 'null'],
    items: { type: 'object', properties: { label: { type: 'string' }, url: { type: 'string' } } },
  },
} as const;

/** What a publisher gets back: the stored notification and its recipients. */
export const storedNotificationSchema = {
  type: 'object',
  // Every field is always there (null when empty): said here so generated client types say it too.
  required: [...Object.keys(notificationProperties), 'users'],
  properties: { ...notificationProperties, users: { type: ['array', 'null'], items: { type: 'string' } } },
} as const;

/** What a subscriber sees in their history: no other recipients, plus their own read state. */
export const inboxItemSchema = {
  type: 'object',
  required: [...Object.keys(notificationProperties), 'read', 'muted', 'deliveredAt', 'readAt'],
  properties: {
    ...notificationProperties,
    read: { type: 'boolean' },
    muted: { type: 'boolean' },
    deliveredAt: { type: ['string', 'null'] },
    readAt: { type: ['string', 'null'] },
  },
} as const;

export const errorResponses = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 429: errorSchema } as const;
