import { Ajv, type Options } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

// Two validators instead of Fastify's one: query strings, params and headers arrive as text, so their
// types are coerced ("limit=20" is 20, a single "topic=a" is ["a"]); a JSON body already has types,
// and coercing it would accept {"title": 5} as "5". Neither drops unknown fields silently.
const shared: Options = { useDefaults: true, removeAdditional: false, allErrors: false };
const forText = new Ajv({ ...shared, coerceTypes: 'array' });
const forBody = new Ajv({ ...shared, coerceTypes: false });

export const validatorCompiler: FastifySchemaCompiler<Record<string, unknown>> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? forBody : forText).compile(schema);
