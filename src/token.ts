// `npm run token -- <user> [--topics a,b:*] [--expires 24h]` prints a subscriber JWT, and
// `npm run token -- [<name>] --publish` a publisher JWT, signed with this instance's secret, for trying
// Herald with curl. Uses the same config and kept secret as the server.
import { parseArgs } from 'node:util';
import { createSigner } from 'fast-jwt';
import { loadConfig } from './config.js';
import { loadSecrets } from './secrets.js';
import { parsePatternList } from './domain/topics.js';

const usage = 'usage: npm run token -- <user> [--topics a,b:*] [--expires 24h]\n       npm run token -- [<name>] --publish [--expires 24h]\n';

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}`);
  process.exit(2);
}

function parse() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: { publish: { type: 'boolean', default: false }, topics: { type: 'string' }, expires: { type: 'string', default: '24h' } },
    });
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  }
}

const { values, positionals } = parse();
const user = positionals[0];
if (!user && !values.publish) fail('name a user, or pass --publish');
// A publish token cannot subscribe, so topics on one would only mislead.
if (values.publish && values.topics !== undefined) fail('--topics is for subscriber tokens; a publish token cannot subscribe');
const list = values.topics === undefined ? undefined : parsePatternList(values.topics);
if (list && 'problem' in list) fail(`--topics: ${list.problem}`);
const topics = list?.patterns;
const config = loadConfig();
const { jwtSecret } = loadSecrets(config);
const sign = createSigner({ key: jwtSecret, algorithm: 'HS256', expiresIn: values.expires, ...(config.auth.audience ? { aud: config.auth.audience } : {}) });
process.stdout.write(
  sign({ ...(user ? { sub: user } : {}), ...(values.publish ? { scope: 'publish' } : {}), ...(topics ? { topics } : {}) }) + '\n',
);
