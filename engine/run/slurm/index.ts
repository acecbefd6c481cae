// The Slurm executor: the public face of engine/run/slurm.
export {
  SlurmExecutor,
  readJournal,
  runJobIds,
  jobsJournal,
  cancelMarker,
  planDigest,
  type SlurmExecutorOptions,
  type JournalLine,
} from './executor.js';
export { execSlurmTask } from './job.js';
export { SlurmCommands, SlurmError, parseQueue, parsePartitions, isTerminal, type JobState } from './commands.js';
export {
  checkResources,
  executorSettings,
  resourceArgs,
  stageResources,
  timeProblem,
  type Resources,
  type ExecutorSettings,
  type ExecutorName,
} from './resources.js';
export { RunFiles, type CompletionRecord, type SlurmPlanFile, type TasksFile } from './files.js';
