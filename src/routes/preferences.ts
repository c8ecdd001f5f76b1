import type { FastifyInstance } from 'fastify';
import { isTimeZone, type PreferenceBook } from '../domain/preferences.js';
import { errors } from '../errors.js';
import { errorResponses, topicSchema } from '../schemas.js';
import type { Preferences } from '../types.js';

/** Bounds a document, so one user cannot make every instance's mute index (or their row) grow without end. */
const maxEntries = 200;

const switches = {
  type: 'object',
  additionalProperties: false,
  properties: { inapp: { type: 'boolean' }, push: { type: 'boolean' } },
} as const;

const hhmm = { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' } as const;

/** The whole document; a field left out takes its default, as PUT replaces everything. */
export const preferencesSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    push: { type: 'string', enum: ['offline', 'always', 'never'], default: 'offline' },
    quietHours: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['start', 'end', 'timeZone'],
      properties: { start: hhmm, end: hhmm, timeZone: { type: 'string', minLength: 1, maxLength: 64 } },
      default: null,
    },
    // Type keys as a publish's `type` allows them; topic keys as topics.
    types: { type: 'object', maxProperties: maxEntries, propertyNames: { minLength: 1, maxLength: 64 }, additionalProperties: switches, default: {} },
    topics: { type: 'object', maxProperties: maxEntries, propertyNames: topicSchema, additionalProperties: switches, default: {} },
  },
} as const;

const responseSchema = {
  ...preferencesSchema,
  properties: {
    ...preferencesSchema.properties,
    types: { type: 'object', additionalProperties: switches },
    topics: { type: 'object', additionalProperties: switches },
  },
} as const;

export async function preferenceRoutes(app: FastifyInstance, opts: { preferences: PreferenceBook }): Promise<void> {
  const { preferences } = opts;
  app.addHook('preHandler', app.requireUser);

  app.get(
    '/preferences',
    { schema: { summary: "The caller's preferences (the defaults if never set)", response: { 200: responseSchema, ...errorResponses } } },
    async (request) => preferences.get(request.userId),
  );

  app.put<{ Body: Preferences }>(
    '/preferences',
    {
      schema: {
        summary: "Replace the caller's preferences",
        body: preferencesSchema,
        response: { 200: responseSchema, ...errorResponses },
      },
    },
    async (request) => {
      const p = request.body;
      // JSON Schema cannot know the time zone database; Intl does.
      if (p.quietHours && !isTimeZone(p.quietHours.timeZone)) {
        throw errors.validationFailed(`body/quietHours/timeZone "${p.quietHours.timeZone}" is not an IANA time zone`);
      }
      return preferences.put(request.userId, p);
    },
  );
}
