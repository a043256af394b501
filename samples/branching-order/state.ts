import { IsBoolean, IsInt, IsOptional, IsPositive, IsString } from 'class-validator';

/** An order on its way through the branching order flow. */
export class BranchingOrderState {
  @IsString() orderId!: string;
  @IsInt() @IsPositive() amountCents!: number;
  /** Express orders go through the `rush` group; the others get standard shipping. */
  @IsBoolean() express!: boolean;
  /** Orders from trusted customers skip the manual fraud review (a goto). */
  @IsBoolean() trusted!: boolean;
  @IsOptional() @IsString() reservationId?: string;
  @IsOptional() @IsString() shipmentId?: string;
  @IsOptional() @IsString() paymentId?: string;
  @IsOptional() @IsString() confirmationId?: string;
}

/** The payment child workflow's state. */
export class PaymentState {
  @IsString() orderId!: string;
  @IsInt() @IsPositive() amountCents!: number;
  @IsOptional() @IsString() authorizationId?: string;
  @IsOptional() @IsString() paymentId?: string;
}
