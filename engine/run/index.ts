export { runPlan, type RunOptions, type RunResult, type RunFailure } from './scheduler.js';
export type { RunEvent, InstanceStatus, RunStatus, InstanceSummary } from './events.js';
export type { Executor, Execution, JobSpec, JobObserver, JobResult, ProgressUpdate } from './executor.js';
export { InProcessExecutor, runJob, machineProvenance } from './inprocess.js';
export { ChildProcessExecutor, execStoredJob, cliCommand } from './child.js';
export {
  RunRecorder,
  readRun,
  readEvents,
  runKeys,
  listRuns,
  latestRun,
  newRunId,
  safeName,
  effectiveStatus,
  type RunRecord,
  type InstanceRecord,
  type RunRef,
} from './records.js';
export { analysePlan, previousRecords, matchPrevious, type InstanceAnalysis } from './analyse.js';
