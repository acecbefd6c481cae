export { createRenderer, chooseMode, JsonRenderer, type Renderer, type RendererMode } from './renderer.js';
export { RateTracker, bar, formatDuration } from './format.js';
