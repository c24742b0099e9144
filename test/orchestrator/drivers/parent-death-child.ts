/**
 * A stand-in for a node, for `parent-death.test.ts`: starts `sleep <marker>` as a group process
 * (bound to this process when a helper is given, held and released when asked), prints its pid
 * on a line, then idles until it is killed.
 *
 * Arguments: `<setpriv path | none> <marker> <hold | nohold>`.
 */
import { spawnGroup } from "../../../src/orchestrator/drivers/process-group.js";

const [helper = "none", marker = "", mode = "nohold"] = process.argv.slice(2);
const proc = await spawnGroup("sleep", [marker], {
  cwd: "/",
  env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
  output: "ignore",
  hold: mode === "hold",
  ...(helper === "none" ? {} : { parentDeathHelper: helper }),
});
proc.release();
process.stdout.write(`${proc.pid}\n`);
setInterval(() => undefined, 60_000);
