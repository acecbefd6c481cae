// One entry of the bad-input catalogue (docs/bad-inputs.md): something a user can get wrong, made
// for real in a scratch directory, and what ca-pipe answers. Each area keeps its cases in
// `test/bad-inputs/<area>.cases.ts` (exporting `cases`); one test runs them all and checks that the
// catalogue shows the real answers, so the document cannot drift from the messages.
export interface BadInputCase {
  /** Stable slug, unique across areas (it anchors the catalogue row). */
  id: string;
  /** Catalogue section: e.g. 'config', 'store', 'data', 'weights', 'cli'. */
  area: string;
  /** What the user got wrong, one sentence. */
  mistake: string;
  /** Builds the bad input under `dir` (a fresh scratch directory) and runs the real CLI on it. */
  run: (dir: string) => Promise<{ exitCode: number | null; output: string }>;
  /** Text (or pattern) the answer must contain; the catalogue shows the real answer with `dir` as `<dir>`. */
  expect: string | RegExp;
  /** The exit code ca-pipe must end with (2: bad input found before any work, 1: failure during work). */
  exitCode: number;
}
