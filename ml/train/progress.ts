// Progress phases of a training run (feature extraction in images, then epochs in batches).
// A stage's reporter keeps one state (done, total, unit, message) and the engine's reporter emits
// it at once on total(), coalescing the other calls; so a new phase must set its done count and
// message BEFORE declaring its total, or the UI shows the previous phase's count against the new
// total ("1440/22 batch" while the features of 1440 images were being extracted).

export interface ProgressSink {
  total(n: number, unit?: string): void;
  tick(n?: number): void;
  set(done: number): void;
  message(text: string): void;
}

export interface Phase {
  total: number;
  unit: string;
  message: string;
  /** Work already done in this phase (a resumed epoch starts at its checkpointed batch). */
  done?: number;
}

/** Switches the reporter to a new phase, consistent at every call a reporter may emit on. */
export function beginPhase(progress: ProgressSink | undefined, phase: Phase): void {
  if (!progress) return;
  // A throttling reporter emits on the first call that comes due: let that be a no-op, so what it
  // emits is still the old phase, whole; the calls after it are coalesced into total()'s emission.
  progress.tick(0);
  progress.set(phase.done ?? 0);
  progress.message(phase.message);
  progress.total(phase.total, phase.unit);
}

export const EXTRACTING = 'extracting backbone features';
