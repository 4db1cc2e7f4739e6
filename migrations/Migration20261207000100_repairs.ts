import { Migration } from '@mikro-orm/migrations';

const ACTIONS_BEFORE = ['RUN_JOB', 'PAUSE_JOB', 'RESUME_JOB', 'CREDIT_WALLET'];
const ACTIONS = [
  ...ACTIONS_BEFORE,
  'ADJUST_WALLET',
  'CREATE_PRODUCT',
  'UPDATE_PRODUCT',
  'START_FLASH_SALE',
  'STOP_FLASH_SALE',
  'REPLAY_DEAD_LETTER',
  'DISCARD_DEAD_LETTER',
  'CANCEL_AUCTION',
  'ADMIN_CREATE_ORDER',
  'CANCEL_ORDER',
  'REFUND_ORDER',
  'REFUND_PAYMENT',
];
const list = (values: string[]) => values.map((v) => `'${v}'`).join(', ');

/**
 * Repairs an operator can make (issue 28):
 * - `products.active`: a withdrawn product refuses new orders and keeps the ones it has (true for
 *   every existing product, so nothing changes until an admin says so).
 * - The ledger's `ADJUST` line: an admin's correction of a wallet, signed, the only line that may be
 *   negative (the balance itself stays >= 0 by `wallets_balance_check`).
 * - Every admin mutation writes an `audit_log` row: the actions it may name.
 */
export class Migration20261207000100_repairs extends Migration {
  override name = 'Migration20261207000100_repairs';

  override up(): void {
    this.addSql(`alter table "products" add column "active" boolean not null default true`);
    this.addSql(`alter table "wallet_ledger" drop constraint "wallet_ledger_entry_check"`);
    this.addSql(`alter table "wallet_ledger" add constraint "wallet_ledger_entry_check" check ("entry" in ('CREDIT', 'FREEZE', 'UNFREEZE', 'DEBIT', 'ADJUST'))`);
    this.addSql(`alter table "wallet_ledger" drop constraint "wallet_ledger_amount_check"`);
    this.addSql(`alter table "wallet_ledger" add constraint "wallet_ledger_amount_check" check ("amount" > 0 or ("entry" = 'ADJUST' and "amount" <> 0))`);
    this.addSql(`alter table "audit_log" drop constraint "audit_log_action_check"`);
    this.addSql(`alter table "audit_log" add constraint "audit_log_action_check" check ("action" in (${list(ACTIONS)}))`);
  }

  override down(): void {
    this.addSql(`delete from "audit_log" where "action" not in (${list(ACTIONS_BEFORE)})`);
    this.addSql(`alter table "audit_log" drop constraint "audit_log_action_check"`);
    this.addSql(`alter table "audit_log" add constraint "audit_log_action_check" check ("action" in (${list(ACTIONS_BEFORE)}))`);
    this.addSql(`alter table "wallet_ledger" drop constraint "wallet_ledger_amount_check"`);
    this.addSql(`alter table "wallet_ledger" add constraint "wallet_ledger_amount_check" check ("amount" > 0)`);
    this.addSql(`alter table "wallet_ledger" drop constraint "wallet_ledger_entry_check"`);
    this.addSql(`alter table "wallet_ledger" add constraint "wallet_ledger_entry_check" check ("entry" in ('CREDIT', 'FREEZE', 'UNFREEZE', 'DEBIT'))`);
    this.addSql(`alter table "products" drop column if exists "active"`);
  }
}
