import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { errors } from '../errors.js';

/**
 * Deepest JSON a request body may be. Parsing is iterative, but JSON.stringify, ajv and the response
 * serialiser recurse: a 5,000-level `data` would overflow the stack there and answer 500.
 */
export const maxJsonDepth = 32;

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** A UTF-16 surrogate on its own (with the `u` flag, a well-formed pair is one code point and never matches). */
const loneSurrogate = /\p{Cs}/u;

export function isWellFormed(s: string): boolean {
  return !loneSurrogate.test(s);
}

/** Input as a message may show it: cut short, so a huge key or number cannot make a huge answer. */
const cut = (s: string) => (s.length > 64 ? `${s.slice(0, 64)}…` : s);
const quote = (s: string) => JSON.stringify(cut(s));

/** Where a scanner level is, as `data.list[2]`: `names` holds each open object's current key or array's index. */
function pathOf(names: readonly (string | number)[], levels: number): string {
  let path = '';
  for (let i = 0; i < levels; i++) {
    const name = names[i]!;
    if (typeof name === 'number') path += `[${name}]`;
    else path += /^[A-Za-z_$][\w$]*$/.test(name) ? `${path === '' ? '' : '.'}${name}` : `[${quote(name)}]`;
  }
  return path;
}

const where = (names: readonly (string | number)[], levels: number) => {
  const path = pathOf(names, levels);
  return path === '' ? '' : ` in ${path}`;
};

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
/** A digit, `.`, `+`, `-`, `e` or `E`. */
const isNumberChar = (c: number) => isDigit(c) || c === 0x2e || c === 0x2b || c === 0x2d || (c | 0x20) === 0x65;

function numberEnd(text: string, i: number): number {
  while (isNumberChar(text.charCodeAt(i))) i++;
  return i;
}

/**
 * Why the number literal `text[start, end)` cannot be carried exactly, or undefined. JSON numbers are
 * read as IEEE doubles, so decimal fractions are never exact in binary and are accepted, rounded as
 * everyone rounds them. Refused are only literals whose value is lost: integers beyond ±(2^53 - 1),
 * where neighbours collapse into one value (an id of 2^53 + 1 would be read as 2^53), and literals that
 * overflow to Infinity (stored as null) or underflow to 0.
 */
function inexactNumber(text: string, start: number, end: number): string | undefined {
  // Without an exponent, 15 characters hold neither an unsafe integer nor an overflow (the common case).
  if (end - start <= 15) {
    let k = start;
    while (k < end && (text.charCodeAt(k) | 0x20) !== 0x65 /* e, E */) k++;
    if (k === end) return undefined;
  }
  const literal = text.slice(start, end);
  const n = Number(literal);
  if (!Number.isFinite(n)) return 'it is beyond the largest number JSON can carry';
  if (/^-?\d+$/.test(literal) && !Number.isSafeInteger(n)) {
    return `integers must be within ±${Number.MAX_SAFE_INTEGER}; send larger ones as strings`;
  }
  if (n === 0 && /[1-9]/.test(literal.split(/e/i)[0]!)) return 'it is too small and would be read as 0';
  return undefined;
}

/**
 * Index of the quote that ends the string opening at `i`, or -1 if the string holds a lone UTF-16
 * surrogate (escaped as `\ud800`, or raw), which SQLite and UTF-8 output could only store as U+FFFD.
 * Only needed when the text has a backslash: text decoded from UTF-8 holds surrogates only in pairs.
 */
function stringEnd(text: string, i: number): number {
  let expectLow = false;
  for (let j = i + 1; j < text.length; j++) {
    let u = text.charCodeAt(j);
    if (u === 0x22 /* " */) return expectLow ? -1 : j;
    if (u === 0x5c /* \ */) {
      u = text.charCodeAt(++j);
      if (u === 0x75 /* u */) {
        u = parseInt(text.slice(j + 1, j + 5), 16);
        j += 4;
      }
    }
    const low = (u & 0xfc00) === 0xdc00;
    if (low !== expectLow) return -1;
    expectLow = !low && (u & 0xfc00) === 0xd800;
  }
  return text.length; // unreachable in valid JSON; the bound keeps a misuse from looping forever
}

/** A key as JSON.parse reads it: `"\u0061"` is `a`. */
function keyAt(text: string, start: number, end: number): string {
  const raw = text.slice(start + 1, end);
  return raw.includes('\\') ? (JSON.parse(text.slice(start, end + 1)) as string) : raw;
}

/**
 * What JSON.parse lets through but Herald refuses in a valid JSON text, as a message naming the problem
 * and where, or undefined: nesting past `maxJsonDepth`, a duplicate key (JSON.parse keeps the last one,
 * so a reviewer and Herald could read different values), a `__proto__` or `constructor` key, a number
 * that cannot be carried exactly, a lone surrogate. `what` names the text: "body", "message". The text
 * must have been decoded from UTF-8 (a raw surrogate is then always half of a pair).
 *
 * Written by hand because none of this survives JSON.parse (duplicates are merged, numbers rounded)
 * and no maintained library checks it alongside the native parser; a full parser in JavaScript would be
 * several times slower. One pass, no recursion (the text is hostile), one Set per object.
 */
export function jsonProblem(text: string, what: string): string | undefined {
  const keys: Set<string>[] = []; // per open object: its keys so far
  const names: (string | number)[] = []; // per open level: an object's current key, an array's current index
  let expectKey = false;
  const escapes = text.includes('\\');
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (names.length === maxJsonDepth) return `${what} is nested more than ${maxJsonDepth} levels deep`;
      expectKey = c === 0x7b;
      if (expectKey) keys.push(new Set());
      names.push(expectKey ? '' : 0);
      i++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      if (c === 0x7d) keys.pop();
      names.pop();
      expectKey = false;
      i++;
    } else if (c === 0x2c /* , */) {
      const top = names.length - 1;
      if (typeof names[top] === 'number') (names[top] as number)++;
      else expectKey = true;
      i++;
    } else if (c === 0x22 /* " */) {
      const end = escapes ? stringEnd(text, i) : text.indexOf('"', i + 1);
      if (end < 0) return `${what} contains a lone UTF-16 surrogate: strings must be well-formed Unicode`;
      if (expectKey) {
        const top = names.length - 1;
        const key = escapes ? keyAt(text, i, end) : text.slice(i + 1, end);
        if (key === '__proto__' || key === 'constructor') return `${what} has a ${quote(key)} key, which is not allowed${where(names, top)}`;
        const seen = keys[keys.length - 1]!;
        if (seen.has(key)) return `${what} has a duplicate key ${quote(key)}${where(names, top)}`;
        seen.add(key);
        names[top] = key;
        expectKey = false;
      }
      i = end + 1;
    } else if (c === 0x2d /* - */ || isDigit(c)) {
      const j = numberEnd(text, i);
      const problem = inexactNumber(text, i, j);
      if (problem !== undefined) return `${what} has a number that JSON cannot carry exactly${where(names, names.length)}: ${cut(text.slice(i, j))} (${problem})`;
      i = j;
    } else {
      i++; // whitespace, ':', the letters of true, false and null
    }
  }
  return undefined;
}

/**
 * Strict request bodies for every route: JSON only (anything else is 415), valid UTF-8 (invalid bytes
 * are refused rather than replaced by U+FFFD), and whatever `jsonProblem` refuses.
 * (Types are checked without coercion by src/validation.ts.)
 */
export const jsonBodyPlugin = fp(async (app: FastifyInstance) => {
  // Prototype keys are let through the parse (JSON.parse makes them plain own properties) so that
  // `jsonProblem` can name them, instead of Fastify calling the body "not valid JSON".
  const parseJson = app.getDefaultJsonParser('ignore', 'ignore');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request: FastifyRequest, raw: Buffer, done) => {
    const charset = /;\s*charset="?([^";\s]+)/i.exec(request.headers['content-type'] ?? '')?.[1];
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      return done(errors.charsetUnsupported(charset));
    }
    let text: string;
    try {
      text = utf8.decode(raw);
    } catch {
      return done(errors.bodyNotUtf8());
    }
    parseJson(request, text, (err, body) => {
      if (err) return done(err);
      const problem = jsonProblem(text, 'body');
      if (problem !== undefined) return done(errors.jsonNotStrict(problem));
      done(null, body);
    });
  });
});
