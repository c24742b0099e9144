/**
 * The real platform: the one place where Blixard touches the clock, randomness, the file system
 * and the network. Only composition roots (the CLI) import it; the simulator replaces it.
 */
export { randomSeed } from "./seed.js";
export { SystemClock } from "./clock.js";
export { installNativeCrc32 } from "./native-crc32.js";
