import { badInput } from '../errors.js';

/** Entity ids are bigserial numbers; anything else is the caller's mistake, named by its field. */
export function parseId(id: string, what: string, field: string): string {
  if (!/^[1-9][0-9]{0,17}$/.test(id)) throw badInput(`"${id}" is not ${what} id`, field);
  return id;
}
