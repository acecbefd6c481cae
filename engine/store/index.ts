export {
  Store,
  StoreLocationError,
  blockingFile,
  checkKey,
  writeDenied,
  type Entry,
  type EntryMeta,
  type Staging,
  type AcquireResult,
} from './store.js';
export { verifyStore, type VerifyReport, type VerifyProblem } from './verify.js';
export {
  buildManifest,
  manifestDigest,
  serializeManifest,
  parseManifest,
  listFiles,
  type Manifest,
  type ManifestFile,
} from './manifest.js';
export { sha256Bytes, sha256File } from './hash.js';
export { tryAcquire, staleOwner, breakStale, readOwner, HeldLock, DEFAULT_LOCK_TIMING, type LockOwner, type LockTiming } from './lock.js';
