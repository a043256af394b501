/**
 * Rate limiters shared by every worker on one database: the same slot booking as the in-process limiter, kept in
 * `sagaflow_rate_slots` and done under a per-limiter advisory lock on PostgreSQL, so no window of any worker's calls
 * holds more than the limit.
 */
import type { ResolvedRateLimit } from '../../policies/rate-limiter';
import { num } from './rows';
import { StorePart } from './store-session';

/** Books call slots of shared rate limiters in the store. */
export class RateSlots extends StorePart {
  /**
   * Asks limiter `limiter` for a slot at `now` for caller `key`: resolves to `now` when the call may go at once (the
   * slot is taken), or to the booked time at which to ask again; asking again then takes the booking.
   */
  reserve(limiter: string, spec: ResolvedRateLimit, key: string, now: number): Promise<number> {
    // As JSON text: a caller's key may hold characters PostgreSQL's text refuses (NUL).
    const slotKey = JSON.stringify(key);
    // On its own (not in a group-commit batch): the limiter's lock is held only for this booking.
    return this.run('book a rate-limit slot', 'alone', async (x) => {
      const t = this.dialect.t('rateSlots');
      if (this.setup.kind === 'postgres') await x('SELECT pg_advisory_xact_lock(hashtext(?))', [`sagaflow rate limiter ${limiter}`]);
      // Slots and bookings a window old are spent, or their callers went away (rolled back while waiting): a caller
      // back that late books anew.
      await x(`DELETE FROM ${t} WHERE limiter = ? AND at < ?`, [limiter, now - spec.perMs]);
      const { rows: booked } = await x(`SELECT id, at FROM ${t} WHERE limiter = ? AND slot_key = ?`, [limiter, slotKey]);
      const booking = booked[0];
      if (booking !== undefined) {
        const at = num(booking.at);
        if (at <= now) await x(`UPDATE ${t} SET slot_key = NULL WHERE id = ?`, [booking.id]);
        return at;
      }
      // The slot a window after the limit-th newest one, or now (slots older than a window cannot push it later).
      const { rows } = await x(`SELECT at FROM ${t} WHERE limiter = ? ORDER BY at DESC LIMIT 1 OFFSET ?`, [limiter, spec.limit - 1]);
      const oldest = rows[0];
      const at = oldest === undefined ? now : Math.max(now, num(oldest.at) + spec.perMs);
      await x(`INSERT INTO ${t} (limiter, at, slot_key) VALUES (?, ?, ?)`, [limiter, at, at > now ? slotKey : null]);
      return at;
    });
  }
}
