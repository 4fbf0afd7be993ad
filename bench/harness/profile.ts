// webgrad's per-kernel profile of each work item (`npm run bench -- --profile`): one warm run under
// wg.profile, as a table of kernels (GPU time from timestamp queries where the adapter has them).
// Runs in the benchmark page and, with --node, on Dawn.

import * as wg from '../../src';
import { createEngine } from './webgrad';
import { describe, selectWorks, workData } from './workloads';

export interface WorkProfile {
  work: string;
  description: string;
  /** wg.formatProfile's table, per kernel. */
  table: string;
}

export async function profileWorks(opts: { quick?: boolean; works?: string[] } = {}): Promise<WorkProfile[]> {
  const works = selectWorks(!!opts.quick, opts.works);
  const engine = await createEngine();
  const out: WorkProfile[] = [];
  for (const work of works) {
    const prepared = await engine.prepare(work, workData(work));
    try {
      await prepared.run(); // pipelines compiled and plans made outside the profile
      const p = await wg.profile(() => prepared.run());
      out.push({ work: work.name, description: describe(work), table: wg.formatProfile(p) });
    } finally {
      prepared.dispose();
    }
  }
  return out;
}

/** The profiles as text for the console. */
export function formatWorkProfiles(profiles: WorkProfile[]): string {
  return profiles.map((p) => `webgrad profile of ${p.work} (${p.description}):\n${p.table}`).join('\n\n');
}
