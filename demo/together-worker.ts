// "Train together", the worker's side: while the user trains with a session URL set, each step is
// one step of a data-parallel session (wg.distributed.DataParallel over the WebSocket
// coordinator): this tab computes the gradients of its slice of the batch, the tabs and Node
// processes in the session sum them, and all apply the same update. Every replica walks the same
// batches (same data seed and batch size, which the session checks), so after joining — when
// rank 0 sends its model — this tab moves its place in the data to the session's step.
// Pausing leaves the session; training again rejoins it.

import * as wg from '../src/index';
import type { FromWorker, Progress, TogetherStatus, TrainConfig } from './protocol';

export class Together {
  private url: string | null = null;
  private dp: wg.distributed.DataParallel | null = null;
  private trainer: wg.Trainer | null = null;
  /** What the last step said (kept when only the membership changes). */
  private lastStep = 'In the session: the first step starts when every replica is ready.';

  constructor(
    private readonly send: (msg: FromWorker) => void,
    /** The data order's seed (the same on every replica). */
    private readonly dataSeed: number,
  ) {}

  /** The session to train in from the next step on (null: train alone). */
  setUrl(url: string | null): void {
    this.leave();
    this.url = url;
    this.report(url ? 'waiting' : 'off', url ? 'Press Train to join the session: this tab trains as one of its replicas.' : '');
  }

  /** One training step: alone, or as this tab's part of the session's step. */
  async step(s: { config: TrainConfig; progress: Progress }, trainer: wg.Trainer, x: wg.Tensor, y: wg.Tensor): Promise<wg.StepResult> {
    if (!this.url) return trainer.step(x, y);
    const dp = this.dp && this.trainer === trainer ? this.dp : this.join(s, trainer);
    try {
      const r = await dp.step(({ rank, worldSize }) => {
        const { start, count } = wg.distributed.shardRange(x.shape[0]!, rank, worldSize);
        return { x: wg.narrow(x, 0, start, count), y: wg.narrow(y, 0, start, count) };
      });
      this.lastStep = `Step ${r.step + 1}: rank ${r.rank} of ${r.worldSize}, ${r.samples} of the ${r.globalBatch} samples here; ${Math.round(r.communicationMs)} ms of ${Math.round(r.ms)} spent exchanging gradients and waiting.`;
      this.report('joined', this.lastStep);
      return { loss: r.loss, microBatches: r.microBatches, microBatchSize: r.microBatchSize, recoveries: 0, skipped: false, skipReason: null, skippedSteps: 0 };
    } catch (e) {
      this.dp = null;
      this.url = null;
      this.report('failed', (e as Error).message);
      throw e;
    }
  }

  /**
   * After a step: if the session is at another step than this tab's progress (it just joined and
   * was sent the session's model), move the progress there. True when it moved.
   */
  realign(progress: Progress, loader: wg.data.DataLoader): boolean {
    const steps = this.dp?.steps;
    if (steps === undefined || steps === progress.step) return false;
    progress.step = steps;
    progress.epoch = Math.floor(steps / loader.length);
    progress.samplesInEpoch = (steps % loader.length) * loader.batchSize;
    return true;
  }

  /** Stop being a replica (training paused or stopped); the next step with a URL rejoins. */
  leave(): void {
    if (!this.dp) return;
    this.dp.close();
    this.dp = null;
    this.trainer = null;
    if (this.url) this.report('waiting', 'Left the session while paused; Train rejoins it.');
  }

  private join(s: { config: TrainConfig; progress: Progress }, trainer: wg.Trainer): wg.distributed.DataParallel {
    this.leave();
    // The session counts steps on from the leader's: a tab that leads continues its own count.
    trainer.steps = s.progress.step;
    const { model, optimizer, batchSize, augment } = s.config;
    const dp = new wg.distributed.DataParallel({
      trainer,
      transport: new wg.distributed.WebSocketTransport(this.url!),
      name: 'browser tab',
      agreement: { model, optimizer, batchSize, augment, dataSeed: this.dataSeed },
    });
    dp.onMembershipChange = () => this.report('joined', this.lastStep);
    this.dp = dp;
    this.trainer = trainer;
    this.report('waiting', 'Joining the session…');
    return dp;
  }

  private report(state: TogetherStatus['state'], detail: string): void {
    const dp = this.dp;
    this.send({
      type: 'together',
      status: { state, detail, url: this.url, rank: dp?.rank ?? -1, worldSize: dp?.worldSize ?? 0, peers: dp?.peers ?? [] },
    });
  }
}
