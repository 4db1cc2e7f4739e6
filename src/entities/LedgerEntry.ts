import { OptionalProps } from '@mikro-orm/core';
import { Entity, Enum, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

export const LEDGER_ENTRIES = ['CREDIT', 'FREEZE', 'UNFREEZE', 'DEBIT'] as const;
export type LedgerEntryKind = (typeof LEDGER_ENTRIES)[number];

/**
 * One movement of wallet money. CREDIT adds to the balance, FREEZE moves balance to frozen,
 * UNFREEZE moves it back, DEBIT takes money out (from frozen for an H5 order, from the balance for
 * an admin's). Unique indexes allow one FREEZE and one release (UNFREEZE or DEBIT) per order.
 */
@Entity({ tableName: 'wallet_ledger' })
export class LedgerEntry {
  [OptionalProps]?: 'createdAt' | 'orderId';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @Property({ type: 'text' })
  userId!: string;

  @Property({ type: 'bigint', nullable: true })
  orderId: string | null = null;

  @Enum({ items: [...LEDGER_ENTRIES], type: 'text' })
  entry!: LedgerEntryKind;

  @Property({ type: 'integer' })
  amount!: number;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}
