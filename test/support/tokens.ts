// The test deployment's secrets, and tokens signed with them.
import { createSigner } from 'fast-jwt';

export const jwtSecret = 'test-secret-that-is-long-enough-0123456789';
export const publisherKey = 'test-publisher-key-0123456789';

/** Signs a JWT with the test secret: `sub` = user; extra claims override (scope, exp, aud...). */
export function tokenFor(user: string | undefined, claims: Record<string, unknown> = {}, secret = jwtSecret): string {
  const sign = createSigner({ key: secret, algorithm: 'HS256' });
  return sign({ ...(user === undefined ? {} : { sub: user }), ...claims });
}
