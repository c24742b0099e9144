export * from "./errors.js";
export * from "./assert.js";
export * from "./random.js";
export * from "./logger.js";
