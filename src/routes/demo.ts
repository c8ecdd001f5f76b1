import type { FastifyInstance } from 'fastify';
import { errorResponses, topicsQuery, userIdSchema } from '../schemas.js';

/** The user the demo page signs in as when it names none (the same one the start banner prints a token for). */
export const demoUser = 'alice';

/** The topics every demo subscriber token allows: the demo page's default. */
const demoTopics = ['deploys'];

/** How long demo tokens last: a subscriber token for a working day, a publish token for an hour (the page asks again on 401). */
const subscriberTtl = '12h';
const publisherTtl = '1h';

/**
 * Demo-only: hands the browser page a token for any user it names, allowing the demo topics and any
 * topics the page names, and a short-lived publish-scoped token for its publish form. Registered only
 * in demo mode, which the config refuses alongside a real secret, so nothing here exists on a
 * configured deployment (and a page that may sign in as anyone may as well name its topics).
 */
export async function demoRoutes(app: FastifyInstance, opts: { maxTopics: number }): Promise<void> {
  app.post<{ Body: { user?: string; topics?: string[] } }>(
    '/demo/session',
    {
      // `curl -X POST .../demo/session` with no body at all asks for the default user.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        summary: 'Demo mode only: a subscriber token for a demo user (and topics) and a short-lived publish token',
        security: [],
        body: { type: 'object', additionalProperties: false, properties: { user: userIdSchema, topics: topicsQuery(opts.maxTopics) } },
        response: {
          200: {
            type: 'object',
            properties: { user: { type: 'string' }, token: { type: 'string' }, publishToken: { type: 'string' } },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const user = request.body.user ?? demoUser;
      const topics = [...new Set([...demoTopics, ...(request.body.topics ?? [])])];
      return {
        user,
        token: app.jwt.sign({ sub: user, topics }, { expiresIn: subscriberTtl }),
        publishToken: app.jwt.sign({ sub: `demo:${user}`, scope: 'publish' }, { expiresIn: publisherTtl }),
      };
    },
  );
}
