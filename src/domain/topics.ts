// Who may read which topic. The one rule, used wherever a subscriber names a topic: a stream's
// `?topic=`, the WebSocket `subscribe` command, and the history filters. Pure: no Fastify, no config.
import { topicSchema } from '../schemas.js';
import { pusherTopicRoot } from './pusher.js';

const topicName = new RegExp(topicSchema.pattern, 'u');

/** What a topic pattern is, in the words of every error about one. */
const patternRule = 'a topic name, or a prefix of one ending in "*"';

/** A topic pattern: an exact topic (`deploys`), or a prefix ending in `*` (`org:42:*`; `*` is every topic). */
export function isTopicPattern(p: unknown): p is string {
  if (typeof p !== 'string') return false;
  // A topic never contains `*`, so a `*` anywhere but last makes the prefix fail the topic rule.
  const prefix = p.endsWith('*') ? p.slice(0, -1) : p;
  if (prefix === '') return p === '*';
  return prefix.length <= topicSchema.maxLength && topicName.test(prefix);
}

/** A token's `topics` claim: absent means none; anything but an array of patterns is a problem, never ignored. */
export function parseTopicsClaim(claim: unknown): { patterns: string[] } | { problem: string } {
  if (claim === undefined) return { patterns: [] };
  const problem = (what: string) => ({ problem: `the token's topics claim must be an array of topic patterns (${patternRule}): ${what}` });
  if (!Array.isArray(claim)) return problem(`it is ${claim === null ? 'null' : typeof claim === 'object' ? 'an object' : `a ${typeof claim}`}`);
  const bad = claim.findIndex((p) => !isTopicPattern(p));
  // By position, not by value: the value may be long, and the caller knows their own token.
  if (bad >= 0) return problem(`item ${bad} is not one`);
  return { patterns: claim as string[] };
}

/** A comma-separated list of patterns, as HERALD_PUBLIC_TOPICS and `npm run token -- --topics` take it. */
export function parsePatternList(raw: string): { patterns: string[] } | { problem: string } {
  const patterns = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = patterns.find((p) => !isTopicPattern(p));
  return bad === undefined ? { patterns } : { problem: `${JSON.stringify(bad)} is not a topic pattern (${patternRule})` };
}

/** Why a topic is refused: the same words over HTTP and in a WebSocket error reply. */
export const topicRefusal = (topic: string) =>
  `may not read topic "${topic}": neither the token's topics claim nor HERALD_PUBLIC_TOPICS allows it`;

/**
 * Pusher channels live under this prefix (see domain/pusher.ts), private and presence ones included,
 * which a Pusher socket may read only with the app's signature. A wildcard that does not itself start
 * with the prefix (`*`, `p*`) never reaches into it: only a pattern naming it does (`pusher/1/*`).
 */
const reservedRoot = pusherTopicRoot;

/** The topics one reader may read: those that any of its patterns allows. */
export class TopicAccess {
  private readonly exact = new Set<string>();
  private readonly prefixes: string[] = [];

  /** `patterns` are already valid (see `isTopicPattern`). */
  constructor(patterns: Iterable<string>) {
    for (const p of patterns) {
      if (p.endsWith('*')) this.prefixes.push(p.slice(0, -1));
      else this.exact.add(p);
    }
  }

  mayRead(topic: string): boolean {
    if (this.exact.has(topic)) return true;
    const reserved = topic.startsWith(reservedRoot);
    return this.prefixes.some((prefix) => topic.startsWith(prefix) && (!reserved || prefix.startsWith(reservedRoot)));
  }

  /** The first of `topics` this reader may not read, if any. */
  firstRefused(topics: readonly string[]): string | undefined {
    return topics.find((topic) => !this.mayRead(topic));
  }
}
