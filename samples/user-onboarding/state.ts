import 'reflect-metadata';
import { IsEmail, IsIn, IsNotEmpty, IsOptional, IsString } from 'class-validator';

/**
 * The state of one sign-up, validated at `start`. In the `provision` group each branch works on its own copy:
 * what a branch sets (`welcomeMessageId`, `workspaceId`, `billingCustomerId`) is in that branch's output,
 * which the group merges into the state as tagged results (read them with `parallelResults`).
 */
export class OnboardingState {
  @IsString()
  @IsNotEmpty()
  signupId!: string;

  @IsString()
  @IsNotEmpty()
  name!: string;

  @IsEmail()
  email!: string;

  @IsIn(['free', 'team'])
  plan!: 'free' | 'team';

  /** Set by `create-user`. */
  @IsOptional()
  @IsString()
  userId?: string;

  /** Set by `send-welcome-email` (in its branch). */
  @IsOptional()
  @IsString()
  welcomeMessageId?: string;

  /** Set by `provision-workspace` (in its branch). */
  @IsOptional()
  @IsString()
  workspaceId?: string;

  /** Set by `set-up-billing` (in its branch), also when the subscription then fails, so its rollback finds it. */
  @IsOptional()
  @IsString()
  billingCustomerId?: string;
}
