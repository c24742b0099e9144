/**
 * The dashboard in a real browser: playwright-core driving Debian's Chromium (no Playwright
 * browser download) against a real 3-node cluster over TLS with ACLs enforced. The page is
 * opened on a follower: it shows the leader, runs a task submitted from the page to success
 * live, shows the new leader without a reload after the leader process is killed, follows a kv
 * prefix, and with a read-only token cannot cancel a task. Screenshots of each page are saved
 * under `$BLIXARD_ARTIFACTS` (default `<tmp>/blixard-ui-screenshots`).
 */
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../cli/helpers.js";
import { ProcessCluster } from "../cluster/process-cluster.js";

/** The DOM as the functions run inside the page see it (the project compiles without lib.dom). */
interface PageElement {
  readonly textContent: string | null;
  readonly children: { readonly length: number };
}
declare const document: {
  getElementById(id: string): PageElement | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): { readonly length: number };
};

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = process.env["BLIXARD_ARTIFACTS"] ?? join(tmpdir(), "blixard-ui-screenshots");

let cluster: ProcessCluster;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  await ensureBuilt();
  cluster = await ProcessCluster.create({
    size: 3,
    name: "blixard-ui",
    extraArgs: ["--enable-raw-exec"],
  });
  cluster.startAll();
  await cluster.waitForLeader(undefined, 60_000);
  await cluster.bootstrapAcl();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.destroy();
});

async function openDashboard(nodeId: number, token: string): Promise<Page> {
  // The cluster's CA is the test's own: the browser is told to accept its certificate.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(new URL("/ui", cluster.node(nodeId).apiUrl).href);
  await page.fill("#token", token);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#pages:not([hidden])");
  return page;
}

async function tab(page: Page, name: string): Promise<void> {
  await page.click(`#tabs button[data-page=${name}]`);
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/**
 * Waits until the page names the leader the cluster has now; returns it. Throws after 15 s,
 * saying what the page showed and what the cluster says.
 */
async function pageShowsLeader(page: Page): Promise<number> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const shown = await page.textContent("#leader").catch(() => "?");
    const now = await cluster.waitForLeader();
    if (shown === `Leader: node ${now}`) return now;
    if (Date.now() > deadline) {
      throw new Error(`the page shows "${shown}" for 15 s while node ${now} leads`);
    }
    await page.waitForTimeout(100);
  }
}

describe("the dashboard in Chromium", () => {
  it("shows the leader on a follower, runs a task from the page, follows a leader change and a kv prefix", async () => {
    const first = await cluster.waitForLeader();
    const follower = cluster.nodes.map((n) => n.id).find((id) => id !== first) as number;
    const page = await openDashboard(follower, cluster.token ?? "");
    // Under load an election may come first: the page must show whoever leads now.
    let leader = await pageShowsLeader(page);
    if (leader === follower) {
      // The page's node took over: hand the lead on, so a follower's page sees it leave.
      const other = cluster.nodes.map((n) => n.id).find((id) => id !== follower) as number;
      await cluster.client().transferLeader(other);
      leader = await pageShowsLeader(page);
    }
    await page.waitForFunction(
      () => (document.querySelector("#members tbody")?.children.length ?? 0) === 3,
      undefined,
      { timeout: 15_000 },
    );
    await shot(page, "cluster");

    await tab(page, "workers");
    await page.waitForFunction(
      () => (document.querySelector("#workers tbody")?.children.length ?? 0) === 3,
      undefined,
      { timeout: 30_000 },
    );
    await shot(page, "workers");

    // Submit from the page; the row turns "succeeded" through the event stream, no reload.
    await tab(page, "tasks");
    await page.fill("#task-command", "/bin/echo");
    await page.fill("#task-args", "hello from the dashboard");
    await page.click("#submit-task button[type=submit]");
    await page.waitForFunction(
      () =>
        document.getElementById("submit-result")?.textContent?.startsWith("submitted ") === true,
      undefined,
      { timeout: 20_000 },
    );
    const taskId = ((await page.textContent("#submit-result")) ?? "").replace("submitted ", "");
    expect(taskId).not.toBe("");
    await page.waitForFunction(
      (id) =>
        document.querySelector(`#tasks tr[data-task="${id}"] td:nth-child(2)`)?.textContent ===
        "succeeded",
      taskId,
      { timeout: 30_000 },
    );
    await page.click(`#tasks tr[data-task="${taskId}"]`);
    await page.waitForFunction(
      () => document.getElementById("task-detail")?.textContent?.includes("hello from") === true,
      undefined,
      { timeout: 10_000 },
    );
    await shot(page, "tasks");

    // A kv prefix: a write from outside appears live.
    await tab(page, "kv");
    await page.fill("#kv-prefix", "ui/");
    await page.click("#kv-open");
    const client = cluster.client();
    await client.put("ui/greeting", "hello");
    await page.waitForSelector('#kv tr[data-key="ui/greeting"]', { timeout: 10_000 });
    await client.put("ui/greeting", "changed");
    await page.waitForFunction(
      () =>
        document.querySelector('#kv tr[data-key="ui/greeting"] td:nth-child(2)')?.textContent ===
        "changed",
      undefined,
      { timeout: 10_000 },
    );
    await shot(page, "kv");

    await tab(page, "vms");
    await shot(page, "vms");

    // Kill the leader: the page (on a follower) shows the new one without a reload. The 2 s
    // are counted from when the surviving nodes agree on the new leader.
    await tab(page, "cluster");
    await cluster.kill(leader);
    const survivors = cluster.nodes.map((n) => n.id).filter((id) => id !== leader);
    const newLeader = await cluster.waitForLeader(survivors, 30_000);
    const agreedAtMs = performance.now();
    await page.waitForFunction(
      (id) => document.getElementById("leader")?.textContent === `Leader: node ${id}`,
      newLeader,
      { timeout: 2_000 },
    );
    const shownAfterMs = performance.now() - agreedAtMs;
    console.log(
      `dashboard showed the new leader ${shownAfterMs.toFixed(0)} ms after the nodes agreed`,
    );
    expect(
      await page.evaluate(() => document.querySelectorAll("#leader-changes li").length),
    ).toBeGreaterThanOrEqual(2);
    await shot(page, "cluster-after-leader-change");
    cluster.start(leader, "restart");
    await page.context().close();
  }, 240_000);

  it("gives a read-only token read-only pages: it sees tasks but cannot cancel one", async () => {
    const admin = cluster.client();
    await admin.acl.putPolicy("ui-viewer", {
      rules: [
        { resource: "task", access: "read" },
        { resource: "worker", access: "read" },
        { resource: "cluster", access: "read" },
      ],
    });
    const { secret } = await admin.acl.createToken({ name: "viewer", policies: ["ui-viewer"] });
    const task = await admin.orchestrator.submitTask({ command: "/bin/sleep", args: ["30"] });
    const leader = await cluster.waitForLeader(undefined, 30_000);
    const page = await openDashboard(leader, secret);
    await tab(page, "tasks");
    const cancel = `#tasks tr[data-task="${task.id}"] button`;
    await page.waitForSelector(cancel, { timeout: 15_000 });
    expect(await page.isDisabled(cancel)).toBe(true);
    expect(await page.getAttribute(cancel, "title")).toBe("needs task:cancel");
    expect(await page.isDisabled("#submit-task button[type=submit]")).toBe(true);
    // And the API itself refuses, whatever the page shows.
    const refused = await page.evaluate(
      async ({ id, token }) =>
        (
          await fetch(`/v1/tasks/${id}/cancel`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}` },
          })
        ).status,
      { id: task.id, token: secret },
    );
    expect(refused).toBe(403);
    await shot(page, "tasks-read-only");
    await admin.orchestrator.cancelTask(task.id);
    await page.context().close();
  }, 120_000);
});
