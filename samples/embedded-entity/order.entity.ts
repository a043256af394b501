import 'reflect-metadata';
import { Column, Entity, PrimaryColumn } from 'typeorm';
import { SagaFlowColumns } from '../../src/store/typeorm';

/**
 * The application's own order table. Its first columns are the shop's; `flow` embeds the saga's flow fields
 * (columns `flow_status`, `flow_step_name`, `flow_error_reason`, …), which an `EntityMirror` keeps current
 * after every transition of the order's saga.
 */
@Entity({ name: 'shop_orders' })
export class ShopOrder {
  @PrimaryColumn({ type: 'varchar' })
  id!: string;

  @Column({ type: 'varchar' })
  sku!: string;

  @Column({ type: 'integer' })
  quantity!: number;

  @Column({ type: 'integer' })
  amountCents!: number;

  @Column({ type: 'varchar', nullable: true })
  reservationId!: string | null;

  @Column({ type: 'varchar', nullable: true })
  paymentId!: string | null;

  @Column({ type: 'varchar', nullable: true })
  shipmentId!: string | null;

  @Column(() => SagaFlowColumns)
  flow!: SagaFlowColumns;
}
