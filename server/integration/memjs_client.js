// memjs (npm) against a memcached-protocol server, for
// memjs_integration_test: binary protocol, optionally with SASL PLAIN.
//   node memjs_client.js PORT [USER PASSWORD] [--expect-auth-failure]
// Exits 0 when every expectation held, 1 otherwise (with a message).
'use strict';
const memjs = require('memjs');

const args = process.argv.slice(2);
const expectFailure = args.includes('--expect-auth-failure');
const [port, username, password] = args.filter((a) => !a.startsWith('--'));

const client = memjs.Client.create(`127.0.0.1:${port}`, {
  username,
  password,
  retries: 0,
  timeout: 3,
  conntimeout: 3,
  failover: false,
  logger: { log() {} },
});

function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}`);
}

async function main() {
  if (expectFailure) {
    let failed = false;
    try {
      await client.set('denied', 'x', { expires: 0 });
    } catch (e) {
      failed = true;
    }
    check(failed, 'a set with bad credentials must fail');
    return;
  }
  check(await client.set('k', 'value', { expires: 0 }), 'set');
  const got = await client.get('k');
  check(got.value && got.value.toString() === 'value', 'get returns value');
  const missing = await client.get('missing');
  check(missing.value === null, 'get of a missing key is null');
  check(await client.add('k', 'other', { expires: 0 }) === false,
        'add of an existing key fails');
  check(await client.replace('k', 'v2', { expires: 0 }), 'replace');
  check(await client.append('k', '+'), 'append');
  check(await client.prepend('k', '-'), 'prepend');
  // memjs 1.3.2's prepend sends the append opcode (memcached gives the same).
  check((await client.get('k')).value.toString() === 'v2+-', 'concat');
  const created = await client.increment('n', 5, { initial: 10, expires: 0 });
  check(created.success && created.value === 10, 'increment creates');
  const incremented = await client.increment('n', 5, {});
  check(incremented.value === 15, 'increment adds');
  const decremented = await client.decrement('n', 20, {});
  check(decremented.value === 0, 'decrement floors at 0');
  check(await client.touch('k', 100), 'touch');
  check(await client.delete('k'), 'delete');
  check(await client.delete('k') === false, 'delete of a missing key');
  const stats = await new Promise((resolve, reject) => {
    client.stats((err, server, result) => (err ? reject(err) : resolve(result)));
  });
  check(stats && Number(stats.pid) > 0, 'stats');
  await client.flush();
  check((await client.get('n')).value === null, 'flush');
}

main().then(
  () => { client.close(); process.exit(0); },
  (e) => { console.error(e && e.stack ? e.stack : e); client.close();
           process.exit(1); });
