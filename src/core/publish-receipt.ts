/** What `publish` reports once an event is accepted. */
export interface PublishReceipt {
  /** The event's id (given or assigned). */
  readonly eventId: string;
  /** How many waiting steps received it. */
  readonly delivered: number;
  /** True when nothing waited for it and it was kept for the retention window (fast replies). */
  readonly retained: boolean;
  /**
   * True when it was published to one instance (`instanceId`) that did not wait for it yet: it waits in that
   * instance's inbox until a wait of the instance takes it, or the instance ends (then it is reported as dropped).
   */
  readonly held: boolean;
}
