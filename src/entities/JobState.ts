import { OptionalProps } from '@mikro-orm/core';
import { Entity, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

/**
 * A job of the catalogue as every instance sees it: its last run (Agenda drops a deadline wake-up's
 * row when it completes, so this is where its history lives) and whether an admin paused it.
 */
@Entity({ tableName: 'job_states' })
export class JobState {
  [OptionalProps]?: 'lastRunAt' | 'lastFinishedAt' | 'lastError' | 'failCount' | 'paused' | 'updatedAt';

  @PrimaryKey({ type: 'text' })
  name!: string;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  lastRunAt: Date | null = null;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  lastFinishedAt: Date | null = null;

  @Property({ type: 'text', nullable: true })
  lastError: string | null = null;

  /** Failed runs since the last success. */
  @Property({ type: 'integer', default: 0 })
  failCount!: number;

  @Property({ type: 'boolean', default: false })
  paused!: boolean;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  updatedAt!: Date;
}
