// Stage dependency graph: topological order and cycle detection.
import type { StageSpec } from './types.js';

export type TopoResult =
  | { order: StageSpec[] }
  | {
      /** Stage names along the cycle, first repeated at the end: a -> b -> a means a needs b needs a. */
      cycle: string[];
      /** The `needs` entry closing the cycle. */
      closing: { stage: string; input: string };
    };

/** Upstream stages before downstream ones; ties keep the file order. Unknown needs are ignored. */
export function topoOrder(stages: StageSpec[]): TopoResult {
  const byName = new Map(stages.map((s) => [s.name, s]));
  const state = new Map<string, 'visiting' | 'done'>();
  const order: StageSpec[] = [];
  const stack: string[] = [];
  let found: TopoResult | undefined;

  const visit = (s: StageSpec): void => {
    state.set(s.name, 'visiting');
    stack.push(s.name);
    for (const [input, up] of Object.entries(s.needs)) {
      if (found) return;
      const u = byName.get(up);
      if (!u) continue;
      const st = state.get(up);
      if (st === 'visiting') {
        found = { cycle: [...stack.slice(stack.indexOf(up)), up], closing: { stage: s.name, input } };
        return;
      }
      if (st === undefined) visit(u);
    }
    stack.pop();
    state.set(s.name, 'done');
    order.push(s);
  };
  for (const s of stages) {
    if (found) break;
    if (!state.has(s.name)) visit(s);
  }
  return found ?? { order };
}
