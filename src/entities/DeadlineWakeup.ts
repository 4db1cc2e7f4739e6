import { Entity, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

/**
 * One row per kind of deadline: when its Agenda wake-up job is armed, and which job that is.
 * Arming and re-arming lock this row, so instances racing to arm are serialised.
 */
@Entity({ tableName: 'deadline_wakeups' })
export class DeadlineWakeup {
  @PrimaryKey({ type: 'text' })
  kind!: string;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  wakeAt: Date | null = null;

  @Property({ type: 'text', nullable: true })
  armId: string | null = null;
}
