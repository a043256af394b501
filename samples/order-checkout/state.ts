import 'reflect-metadata';
import { IsInt, IsNotEmpty, IsOptional, IsString, Min } from 'class-validator';

/**
 * The state of one checkout. The runtime validates it with these class-validator rules at `start` (an invalid
 * order is refused and nothing is stored) and hands every step an `OrderState` instance.
 */
export class OrderState {
  @IsString()
  @IsNotEmpty()
  orderId!: string;

  @IsString()
  @IsNotEmpty()
  sku!: string;

  @IsInt()
  @Min(1)
  quantity!: number;

  @IsInt()
  @Min(1)
  amountCents!: number;

  /** Set by `reserve-inventory`. */
  @IsOptional()
  @IsString()
  reservationId?: string;

  /** Set by `charge-payment` when the provider's `payment.captured` webhook arrives. */
  @IsOptional()
  @IsString()
  paymentId?: string;

  /** Set by `ship`. */
  @IsOptional()
  @IsString()
  shipmentId?: string;
}
