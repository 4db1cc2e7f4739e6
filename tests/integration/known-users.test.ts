import type { App } from '../../src/app.js';
import { UserService } from '../../src/services/users.js';
import { setUp } from '../support/harness.js';

/**
 * The known-users cache (a user's first token writes their row; later ones write nothing) holds at
 * most two generations. Seen through the table: a user whose row was deleted behind its back gets it
 * back only if the cache had let them go.
 */
let app: App;

beforeAll(async () => ({ app } = await setUp('known_users', { ENABLE_CRON: 'false' })));

test('users seen lately stay known across a generation; those unseen for two are forgotten (and written again)', async () => {
  const users = new UserService(2);
  const em = () => app.services.orm.em.fork();
  const ensure = (id: string) => users.ensure(em, { id, role: 'user' });
  const rows = async () =>
    (await em().execute<Array<{ id: string }>>(`select id from users where id like 'known-%' order by id`)).map((r) => r.id);
  const forget = () => em().execute(`with w as (delete from wallets where user_id like 'known-%') delete from users where id like 'known-%'`);

  await ensure('known-a');
  await ensure('known-b'); // a generation of two: a, b
  await ensure('known-c'); // the next: c
  await forget();
  await ensure('known-a'); // from the older generation: moved to the newer (c, a), no write
  await ensure('known-b'); // likewise: the newer is full, so (c, a) becomes the older, b the newer
  expect(await rows()).toEqual([]);

  await ensure('known-d'); // (b, d); (c, a) older
  await ensure('known-e'); // (e); (b, d) older: c and a are let go
  expect(await rows()).toEqual(['known-d', 'known-e']);
  await ensure('known-c');
  await ensure('known-b'); // still known
  expect(await rows()).toEqual(['known-c', 'known-d', 'known-e']);
});
