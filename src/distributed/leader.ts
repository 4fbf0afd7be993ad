// The leader's part of a step: it waits until every holder of the session's state is ready,
// begins the attempt (numbered past the last one any leader began) with every ready replica and
// sends the state to those that lack it; at the end it collects each participant's "done" and
// commits the update to all of them at once. The re-run of a round's sync (a participant was
// lost) is begun with the round's remaining participants only: they alone did its local steps.

import { encodeFrame } from './frame';
import type { Begin } from './messages';
import type { Replica } from './replica';
import { sendState } from './state-transfer';

/**
 * As leader: wait until every replica holding the state (as the hub counts them) is ready for this
 * step (and, before the session's first attempt, until minReplicas are), then begin the attempt
 * with every ready replica, sending the state to those that do not hold it. To re-run the sync of
 * a round (`rerun`: the attempt that was lost), wait for its remaining participants instead and
 * begin with them alone. Null if this replica stops leading meanwhile.
 */
export async function lead(r: Replica, rerun: Begin | null = null): Promise<Begin | null> {
  const s = r.syncs;
  const v = r.view;
  const participants = await r.link.until((): number[] | null | undefined => {
    if (v.leader !== r.id) return null;
    const alive = new Set(v.ids);
    if (rerun) {
      // The holders among them must say they are ready again (a holder that does not, the hub
      // stops counting at the deadline); those that joined for the round wait already.
      const left = rerun.participants.filter((id) => id !== r.id && alive.has(id));
      if (left.some((id) => v.holds(id) && !v.waitsFor(id, s))) return undefined;
      return [r.id, ...left.filter((id) => v.waitsFor(id, s))];
    }
    if (v.members.synced.some((id) => id !== r.id && alive.has(id) && !v.waitsFor(id, s))) return undefined;
    const ready = [r.id, ...v.ids.filter((id) => id !== r.id && v.waitsFor(id, s))];
    if (v.lastBegun === null && ready.length < r.minReplicas) return undefined;
    return ready;
  });
  if (!participants) return null;
  // Attempts are numbered through the session, and the hub accepts only the next number: the
  // one after the last attempt any leader began.
  const attempt = (v.lastBegun?.attempt ?? -1) + 1;
  const syncTo = rerun ? [] : participants.filter((id) => id !== r.id && !v.holds(id));
  const begin: Begin = { type: 'begin', step: s, attempt, participants, syncTo };
  r.log(`begins step ${s} attempt ${attempt} with ${participants.join(',')}${begin.syncTo.length ? ` (state to ${begin.syncTo.join(',')})` : ''}`);
  r.synced = true;
  v.began(begin);
  // Through the hub even when nobody else takes part: the hub numbers the attempts.
  r.link.sendFrame(encodeFrame({ ...begin, to: r.others(participants) }));
  if (begin.syncTo.length) await sendState(r, begin);
  return begin;
}

/**
 * As leader, once this replica holds the sums: wait for every participant's "done", then commit;
 * skipped if any participant's loss or gradients were not finite (the sums are not, on every replica).
 */
export async function commit(r: Replica, b: Begin, ownLossSum: number, ownFinite: boolean, globalBatch: number): Promise<void> {
  const { lossSum, finite } = await r.link.until(() => {
    let sum = ownLossSum;
    let all = ownFinite;
    for (const id of r.others(b.participants)) {
      const m = r.mailbox.done(b, id);
      if (!m) {
        r.checkAttempt(b);
        return undefined;
      }
      sum += m.msg.lossSum;
      all &&= m.msg.finite;
    }
    return { lossSum: sum, finite: all };
  });
  // To every participant, this replica included: the hub relays it to all of them at once.
  r.link.sendTo(b.participants, { type: 'commit', step: b.step, attempt: b.attempt, loss: finite ? lossSum / globalBatch : 0, globalBatch, skipped: !finite });
}
