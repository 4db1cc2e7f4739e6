import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261121000000_foundation } from './Migration20261121000000_foundation.js';
import { Migration20261121000100_agenda_jobs } from './Migration20261121000100_agenda_jobs.js';
import { Migration20261121000200_orders } from './Migration20261121000200_orders.js';
import { Migration20261123000000_job_states } from './Migration20261123000000_job_states.js';
import { Migration20261123000100_payments } from './Migration20261123000100_payments.js';
import { Migration20261123000200_messages } from './Migration20261123000200_messages.js';
import { Migration20261123000300_vip } from './Migration20261123000300_vip.js';
import { Migration20261123000400_flash_sales } from './Migration20261123000400_flash_sales.js';
import { Migration20261123000500_job_runs } from './Migration20261123000500_job_runs.js';
import { Migration20261123000600_audit_log } from './Migration20261123000600_audit_log.js';
import { Migration20261123000700_outbox_catch_up } from './Migration20261123000700_outbox_catch_up.js';
import { Migration20261124000000_same_instant_ends } from './Migration20261124000000_same_instant_ends.js';
import { Migration20261207000100_repairs } from './Migration20261207000100_repairs.js';
import { Migration20261208000000_pending_orders_by_user } from './Migration20261208000000_pending_orders_by_user.js';
import { Migration20261209000000_refunds } from './Migration20261209000000_refunds.js';

/** Every migration, in order. Listed explicitly so the compiled server and the tests load the same set. */
export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261121000000_foundation', class: Migration20261121000000_foundation },
  { name: 'Migration20261121000100_agenda_jobs', class: Migration20261121000100_agenda_jobs },
  { name: 'Migration20261121000200_orders', class: Migration20261121000200_orders },
  { name: 'Migration20261123000000_job_states', class: Migration20261123000000_job_states },
  { name: 'Migration20261123000100_payments', class: Migration20261123000100_payments },
  { name: 'Migration20261123000200_messages', class: Migration20261123000200_messages },
  { name: 'Migration20261123000300_vip', class: Migration20261123000300_vip },
  { name: 'Migration20261123000400_flash_sales', class: Migration20261123000400_flash_sales },
  { name: 'Migration20261123000500_job_runs', class: Migration20261123000500_job_runs },
  { name: 'Migration20261123000600_audit_log', class: Migration20261123000600_audit_log },
  { name: 'Migration20261123000700_outbox_catch_up', class: Migration20261123000700_outbox_catch_up },
  { name: 'Migration20261124000000_same_instant_ends', class: Migration20261124000000_same_instant_ends },
  { name: 'Migration20261207000100_repairs', class: Migration20261207000100_repairs },
  { name: 'Migration20261208000000_pending_orders_by_user', class: Migration20261208000000_pending_orders_by_user },
  { name: 'Migration20261209000000_refunds', class: Migration20261209000000_refunds },
];
