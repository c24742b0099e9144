export { entries, entry, VOTERS } from "../../src/storage/testing.js";
