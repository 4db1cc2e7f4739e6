import { OptionalProps } from '@mikro-orm/core';
import { Check, Entity, Enum, Index, ManyToOne, PrimaryKey, Property, Unique } from '@mikro-orm/decorators/legacy';
import { Order } from './Order.js';
import { User } from './User.js';

export const LEDGER_ENTRIES = ['CREDIT', 'FREEZE', 'UNFREEZE', 'DEBIT', 'ADJUST', 'REFUND'] as const;
export type LedgerEntryKind = (typeof LEDGER_ENTRIES)[number];

/**
 * One movement of wallet money. CREDIT adds to the balance, FREEZE moves balance to frozen,
 * UNFREEZE moves it back, DEBIT takes money out (from frozen for an H5 order, from the balance for
 * an admin's), ADJUST is an admin's correction of the balance, signed (the only line that may be
 * negative), REFUND gives a refunded order's wallet part back to the balance. Unique indexes allow
 * one FREEZE, one release (UNFREEZE or DEBIT) and one REFUND per order.
 */
@Entity({ tableName: 'wallet_ledger' })
@Index({ name: 'wallet_ledger_user_id_idx', properties: ['userId'] })
@Unique({ name: 'wallet_ledger_freeze_once', properties: ['orderId'], where: `"entry" = 'FREEZE'` })
@Unique({ name: 'wallet_ledger_release_once', properties: ['orderId'], where: `"entry" in ('UNFREEZE', 'DEBIT')` })
@Unique({ name: 'wallet_ledger_refund_once', properties: ['orderId'], where: `"entry" = 'REFUND'` })
export class LedgerEntry {
  [OptionalProps]?: 'createdAt' | 'orderId';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @ManyToOne(() => User, {
    mapToPk: true,
    joinColumn: 'user_id',
    foreignKeyName: 'wallet_ledger_user_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  userId!: string;

  @ManyToOne(() => Order, {
    mapToPk: true,
    joinColumn: 'order_id',
    nullable: true,
    foreignKeyName: 'wallet_ledger_order_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  orderId: string | null = null;

  @Enum({ items: [...LEDGER_ENTRIES], type: 'text' })
  entry!: LedgerEntryKind;

  @Property({ type: 'integer' })
  @Check({ name: 'wallet_ledger_amount_check', expression: `"amount" > 0 or ("entry" = 'ADJUST' and "amount" <> 0)` })
  amount!: number;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}
