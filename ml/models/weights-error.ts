// The one error for weights that do not fit a model, thrown by the tfjs loader (models/weights.ts)
// and by the ONNX exporter's strict check (onnx/weights.ts): callers catch one class either way.
import type { LoadReport } from './weights.js';

/** One key's problem, as the exporter's check lists them. */
export interface WeightProblem {
  key: string;
  problem: string;
}

export class WeightsError extends Error {
  /** Per-key problems (the exporter's check); empty when the message says it all. */
  readonly problems: WeightProblem[];

  constructor(
    public file: string,
    detail: string | WeightProblem[],
    /** What the tfjs loader found missing, unexpected or mismatched. */
    public report?: LoadReport,
  ) {
    super(`${file}: ${typeof detail === 'string' ? detail : problemList(detail)}`);
    this.name = 'WeightsError';
    this.problems = typeof detail === 'string' ? [] : detail;
  }
}

function problemList(problems: WeightProblem[]): string {
  const shown = problems.slice(0, 8).map((p) => `  [${p.key}] ${p.problem}`);
  if (problems.length > shown.length) shown.push(`  … and ${problems.length - shown.length} more`);
  return `${problems.length} weight problem(s):\n${shown.join('\n')}`;
}
