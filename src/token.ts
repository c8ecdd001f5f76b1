// `npm run token -- <user> [--publish] [--expires 24h]`: prints a JWT signed with this instance's secret,
// for trying Herald with curl. Uses the same config and kept secret as the server.
import { createSigner } from 'fast-jwt';
import { loadConfig } from './config.js';
import { loadSecrets } from './secrets.js';

const args = process.argv.slice(2);
const user = args.find((a) => !a.startsWith('--'));
const publish = args.includes('--publish');
const expiresIdx = args.indexOf('--expires');
const expiresIn = expiresIdx >= 0 ? args[expiresIdx + 1] : '24h';
if (!user && !publish) {
  process.stderr.write('usage: npm run token -- <user> [--publish] [--expires 24h]\n');
  process.exit(2);
}
const config = loadConfig();
const { jwtSecret } = loadSecrets(config);
const sign = createSigner({ key: jwtSecret, algorithm: 'HS256', expiresIn, ...(config.jwtAudience ? { aud: config.jwtAudience } : {}) });
process.stdout.write(sign({ ...(user ? { sub: user } : {}), ...(publish ? { scope: 'publish' } : {}) }) + '\n');
