// The Blixard dashboard: plain ES modules, no build step, no CDN. Served by every node at /ui.
//
// Authentication: the page itself is open; every API call carries the token the user pasted
// (kept in sessionStorage, sent as `Authorization: Bearer`). The live parts read the event
// stream (`/v1/events`) and kv watch (`/v1/kv/watch`) with fetch() and a stream reader, since
// EventSource cannot send headers; both resume from the last index / revision they saw.

const TOKEN_KEY = "blixard.token";
const STATUS_POLL_MS = 1000;
const METRICS_POLL_MS = 2000;
const CHART_POINTS = 120;
const RECONNECT_MS = 500;

const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) ?? "",
  identity: undefined,
  tasks: new Map(),
  workers: new Map(),
  vms: new Map(),
  kv: new Map(),
  kvPrefix: "",
  status: undefined,
  lastLeader: undefined,
  leaderChanges: [],
  series: { proposalMs: [], proposalRate: [], lag: new Map(), capacity: [] },
  streams: [],
};

// ---- API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: {
      authorization: `Bearer ${state.token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = { code: "INTERNAL", message: text };
  }
  if (!response.ok) throw new ApiError(response.status, json.code, json.message);
  return json;
}

/** Whether the signed-in identity holds `permission` ("task:cancel", "kv:write:app/x"). */
function can(permission) {
  const identity = state.identity;
  if (identity === undefined) return false;
  if (identity.management || identity.kind === "anonymous") return true;
  const [resource, access, key = ""] = permission.split(":");
  const stronger = { read: ["write", "manage", "operator"] };
  return identity.rules.some((rule) => {
    const [r, a, prefix = ""] = rule.split(":");
    if (r !== resource) return false;
    if (a !== access && !(stronger[access] ?? []).includes(a)) return false;
    return resource !== "kv" || key.startsWith(prefix);
  });
}

// ---- Streams -----------------------------------------------------------------------------

/**
 * Reads a Server-Sent Events stream through fetch and calls `onMessage(event, data)` for each
 * message; reconnects with `path(resume)` after a failure, where `resume` is what `onMessage`
 * last returned (the next index or revision). Stops when `signal` aborts.
 */
async function followStream(path, onMessage, signal) {
  let resume;
  while (!signal.aborted) {
    try {
      const response = await fetch(path(resume), {
        headers: { authorization: `Bearer ${state.token}`, accept: "text/event-stream" },
        signal,
      });
      if (response.status === 410) resume = undefined; // compacted: start from now
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      setStreamState("live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message";
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data === "") continue;
          const next = onMessage(event, JSON.parse(data), resume);
          if (next !== undefined) resume = next;
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      setStreamState(`reconnecting (${error.message})`);
    }
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

function setStreamState(text) {
  $("stream-state").textContent = `stream: ${text}`;
}

function startEventStream(signal) {
  const topics = ["task", "worker", "vm"].filter((t) => can(`${t}:read`));
  if (topics.length === 0) return;
  followStream(
    (from) => `/v1/events?topic=${topics.join(",")}${from === undefined ? "" : `&from=${from}`}`,
    (event, data, resume) => {
      if (event === "open") return resume ?? data.index + 1;
      if (event === "heartbeat") return Math.max(resume ?? 0, data.index + 1);
      if (event === "error") return data.resumeFrom;
      if (event !== "change") return undefined;
      for (const change of data.events) applyChange(change);
      render();
      return data.index + 1;
    },
    signal,
  );
}

function applyChange(change) {
  const maps = { task: state.tasks, worker: state.workers, vm: state.vms };
  const map = maps[change.topic];
  if (map === undefined) return;
  const entity = change.task ?? change.worker ?? change.vm;
  if (change.type === "removed" || entity === undefined) map.delete(change.key);
  else map.set(change.key, entity);
}

let kvController;
async function openKv() {
  kvController?.abort();
  kvController = new AbortController();
  state.kvPrefix = $("kv-prefix").value;
  state.kv.clear();
  if (!can(`kv:read:${state.kvPrefix}`)) {
    $("kv-revision").textContent = `no permission to read ${state.kvPrefix || "every key"}`;
    renderKv();
    return;
  }
  const list = await api("GET", `/v1/kv?prefix=${encodeURIComponent(state.kvPrefix)}&limit=1000`);
  for (const entry of list.entries) state.kv.set(entry.key, entry);
  renderKv();
  const prefix = encodeURIComponent(state.kvPrefix);
  followStream(
    (from) => `/v1/kv/watch?prefix=${prefix}&fromRevision=${from ?? list.revision + 1}`,
    (event, data, resume) => {
      if (event === "progress") {
        $("kv-revision").textContent = `revision ${data.revision}`;
        return Math.max(resume ?? 0, data.revision + 1);
      }
      if (event === "error") return data.resumeFrom;
      if (event !== "change") return undefined;
      for (const change of data.events) {
        if (change.type === "delete") state.kv.delete(change.key);
        else state.kv.set(change.key, change.kv);
      }
      $("kv-revision").textContent = `revision ${data.revision}`;
      renderKv();
      return data.revision + 1;
    },
    kvController.signal,
  );
}

// ---- Polls: status, members, metrics -----------------------------------------------------

async function pollStatus() {
  try {
    const status = await api("GET", "/v1/cluster/status");
    state.status = status;
    if (status.leader !== state.lastLeader) {
      state.lastLeader = status.leader;
      state.leaderChanges.unshift({ at: new Date(), leader: status.leader, term: status.term });
      state.leaderChanges.length = Math.min(state.leaderChanges.length, 20);
    }
    for (const peer of status.progress) {
      if (peer.id === status.id) continue;
      const series = state.series.lag.get(peer.id) ?? [];
      push(series, Math.max(0, status.lastIndex - peer.match));
      state.series.lag.set(peer.id, series);
    }
    const members = can("cluster:read") ? await api("GET", "/v1/cluster/members") : undefined;
    renderCluster(status, members);
  } catch (error) {
    $("leader").textContent = `Leader: unknown (${error.message})`;
  }
}

let lastProposals;
async function pollMetrics() {
  try {
    const text = await (await fetch("/metrics")).text();
    const value = (name) => {
      const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m").exec(text);
      return match === null ? 0 : Number(match[1]);
    };
    const count = value("blixard_proposal_apply_latency_seconds_count");
    const sum = value("blixard_proposal_apply_latency_seconds_sum");
    if (lastProposals !== undefined && count > lastProposals.count) {
      push(
        state.series.proposalMs,
        ((sum - lastProposals.sum) / (count - lastProposals.count)) * 1000,
      );
    } else push(state.series.proposalMs, 0);
    push(
      state.series.proposalRate,
      lastProposals === undefined ? 0 : (count - lastProposals.count) / (METRICS_POLL_MS / 1000),
    );
    lastProposals = { count, sum };
    let used = 0;
    let total = 0;
    for (const worker of state.workers.values()) {
      used += worker.allocated.cpuMillis;
      total += worker.capacity.cpuMillis;
    }
    push(state.series.capacity, total === 0 ? 0 : (100 * used) / total);
    drawCharts();
  } catch {
    // metrics are a nicety: the next poll tries again
  }
}

function push(series, value) {
  series.push(value);
  if (series.length > CHART_POINTS) series.shift();
}

// ---- Rendering ---------------------------------------------------------------------------

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className !== undefined) td.className = className;
  return td;
}

function button(text, permission, onClick) {
  const b = document.createElement("button");
  b.textContent = text;
  b.disabled = !can(permission);
  if (b.disabled) b.title = `needs ${permission}`;
  b.addEventListener("click", async (event) => {
    event.stopPropagation();
    try {
      await onClick();
    } catch (error) {
      alert(`${error.code ?? "ERROR"}: ${error.message}`);
    }
  });
  const td = document.createElement("td");
  td.append(b);
  return td;
}

function fill(tableId, rows) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(...rows);
}

function renderCluster(status, members) {
  $("leader").textContent =
    status.leader === null ? "Leader: none" : `Leader: node ${status.leader}`;
  $("term").textContent = status.term;
  $("self").textContent = status.id;
  $("role").textContent = status.role;
  $("commit").textContent = status.commitIndex;
  $("applied").textContent = status.appliedIndex;
  $("last").textContent = status.lastIndex;
  const progress = new Map(status.progress.map((p) => [p.id, p]));
  fill(
    "members",
    (members?.members ?? []).map((m) => {
      const tr = document.createElement("tr");
      const p = progress.get(m.id);
      tr.append(
        cell(`node ${m.id}`),
        cell(m.leader ? "leader" : m.suffrage),
        cell(m.apiAddress ?? ""),
        cell(p === undefined ? "–" : String(p.match)),
        cell(p === undefined ? "–" : String(Math.max(0, status.lastIndex - p.match))),
        cell(p === undefined ? (status.role === "leader" ? "" : "known on the leader") : p.state),
      );
      return tr;
    }),
  );
  $("leader-changes").replaceChildren(
    ...state.leaderChanges.map((c) => {
      const li = document.createElement("li");
      li.textContent = `${c.at.toLocaleTimeString()}: ${c.leader === null ? "no leader" : `node ${c.leader}`} (term ${c.term})`;
      return li;
    }),
  );
}

function bar(used, total) {
  const td = document.createElement("td");
  const outer = document.createElement("span");
  outer.className = "bar";
  const inner = document.createElement("span");
  inner.style.width = `${total === 0 ? 0 : Math.min(100, (100 * used) / total)}%`;
  outer.append(inner);
  td.append(outer, ` ${used} / ${total}`);
  return td;
}

function render() {
  fill(
    "workers",
    [...state.workers.values()].map((w) => {
      const tr = document.createElement("tr");
      tr.append(
        cell(`node ${w.nodeId}`),
        cell(
          w.drain && w.status === "offline" ? "offline (drained)" : w.status,
          `status-${w.status}`,
        ),
        cell(w.features.join(", ")),
        bar(w.allocated.cpuMillis, w.capacity.cpuMillis),
        bar(w.allocated.memoryMb, w.capacity.memoryMb),
      );
      return tr;
    }),
  );
  const filter = $("task-filter").value;
  const tasks = [...state.tasks.values()]
    .filter((t) => filter === "" || t.status === filter)
    .sort((a, b) => b.submittedAtMs - a.submittedAtMs);
  fill(
    "tasks",
    tasks.map((t) => {
      const tr = document.createElement("tr");
      tr.dataset.task = t.id;
      const done = ["succeeded", "failed", "cancelled", "timed_out"].includes(t.status);
      const cancel = button("Cancel", "task:cancel", () =>
        api("POST", `/v1/tasks/${encodeURIComponent(t.id)}/cancel`),
      );
      if (done) cancel.firstChild.disabled = true;
      tr.append(
        cell(t.id),
        cell(t.status, `status-${t.status}`),
        cell(t.nodeId === null ? "" : `node ${t.nodeId}`),
        cell(String(t.attempts)),
        cell([t.spec.command, ...t.spec.args].join(" ")),
        cancel,
      );
      tr.addEventListener("click", () => showTask(t.id));
      return tr;
    }),
  );
  fill(
    "vms",
    [...state.vms.values()].map((vm) => {
      const tr = document.createElement("tr");
      const name = encodeURIComponent(vm.name);
      tr.append(
        cell(vm.name),
        cell(vm.status, `status-${vm.status}`),
        cell(vm.desired),
        cell(vm.nodeId === null ? "" : `node ${vm.nodeId}`),
        cell(String(vm.restarts)),
        cell(vm.lastError),
        button(vm.desired === "running" ? "Stop" : "Start", "vm:manage", () =>
          api("POST", `/v1/vms/${name}/${vm.desired === "running" ? "stop" : "start"}`),
        ),
      );
      return tr;
    }),
  );
}

async function showTask(id) {
  const detail = $("task-detail");
  detail.hidden = false;
  const task = state.tasks.get(id);
  let logs;
  try {
    const answer = await api("GET", `/v1/tasks/${encodeURIComponent(id)}/logs`);
    logs = `\n--- stdout\n${answer.stdout ?? ""}\n--- stderr\n${answer.stderr ?? ""}`;
  } catch (error) {
    logs = `\n(logs: ${error.message})`;
  }
  detail.textContent = `${JSON.stringify(task, null, 2)}${logs}`;
}

function renderKv() {
  fill(
    "kv",
    [...state.kv.values()]
      .sort((a, b) => (a.key < b.key ? -1 : 1))
      .map((entry) => {
        const tr = document.createElement("tr");
        tr.dataset.key = entry.key;
        tr.append(
          cell(entry.key),
          // Reads carry valueBase64 always and value when UTF-8; watch events one of the two.
          cell(entry.value ?? `<${atob(entry.valueBase64).length} bytes>`),
          cell(String(entry.modRevision)),
          button("Delete", `kv:write:${entry.key}`, () =>
            api("DELETE", `/v1/kv/${encodeURIComponent(entry.key)}`),
          ),
        );
        return tr;
      }),
  );
}

function drawChart(canvasId, series, { max, colors = ["#3b82f6", "#ef4444", "#10b981"] } = {}) {
  const canvas = $(canvasId);
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  const all = series.flat();
  const top = max ?? Math.max(1, ...all);
  series.forEach((points, i) => {
    g.strokeStyle = colors[i % colors.length];
    g.beginPath();
    points.forEach((v, x) => {
      const px = (x / (CHART_POINTS - 1)) * canvas.width;
      const py = canvas.height - (v / top) * (canvas.height - 4) - 2;
      if (x === 0) g.moveTo(px, py);
      else g.lineTo(px, py);
    });
    g.stroke();
  });
  g.fillStyle = "#8a93a6";
  g.fillText(`max ${top.toFixed(1)}`, 4, 12);
}

function drawCharts() {
  drawChart("chart-proposals", [state.series.proposalMs, state.series.proposalRate]);
  drawChart("chart-lag", [...state.series.lag.values()]);
  drawChart("chart-capacity", [state.series.capacity], { max: 100 });
}

// ---- Wiring ------------------------------------------------------------------------------

async function loadLists() {
  const loads = [];
  if (can("task:read")) {
    loads.push(
      api("GET", "/v1/tasks?limit=1000").then((r) =>
        r.tasks.forEach((t) => state.tasks.set(t.id, t)),
      ),
    );
  }
  if (can("worker:read")) {
    loads.push(
      api("GET", "/v1/workers").then((r) =>
        r.workers.forEach((w) => state.workers.set(String(w.nodeId), w)),
      ),
    );
  }
  if (can("vm:read")) {
    loads.push(api("GET", "/v1/vms").then((r) => r.vms.forEach((v) => state.vms.set(v.name, v))));
  }
  await Promise.allSettled(loads);
  render();
}

async function signIn() {
  try {
    state.identity = await api("GET", "/v1/acl/whoami");
  } catch (error) {
    $("login-error").textContent = `${error.code ?? "ERROR"}: ${error.message}`;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, state.token);
  $("login").hidden = true;
  $("pages").hidden = false;
  $("logout").hidden = false;
  const who = state.identity;
  $("identity").textContent =
    `${who.name ?? who.commonName ?? who.kind}${who.management ? " (management)" : ""}`;
  for (const form of document.querySelectorAll(".needs")) {
    const allowed = can(form.dataset.needs);
    for (const control of form.querySelectorAll("input, button")) control.disabled = !allowed;
    if (!allowed) form.title = `read-only: needs ${form.dataset.needs}`;
  }
  const controller = new AbortController();
  state.streams.push(controller);
  await loadLists();
  startEventStream(controller.signal);
  pollStatus();
  pollMetrics();
  setInterval(pollStatus, STATUS_POLL_MS);
  setInterval(pollMetrics, METRICS_POLL_MS);
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  signIn();
});
$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});
for (const tab of document.querySelectorAll("#tabs button")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll("#tabs button")) other.classList.remove("active");
    tab.classList.add("active");
    for (const page of document.querySelectorAll(".page")) {
      page.hidden = page.id !== `page-${tab.dataset.page}`;
    }
  });
}
$("task-filter").addEventListener("change", render);
$("submit-task").addEventListener("submit", async (event) => {
  event.preventDefault();
  const args = $("task-args").value.trim();
  try {
    const answer = await api("POST", "/v1/tasks", {
      spec: { command: $("task-command").value.trim(), args: args === "" ? [] : args.split(/\s+/) },
    });
    $("submit-result").textContent = `submitted ${answer.task?.id ?? answer.id ?? ""}`;
  } catch (error) {
    $("submit-result").textContent = `${error.code}: ${error.message}`;
  }
});
$("kv-open").addEventListener("click", () =>
  openKv().catch((e) => ($("kv-revision").textContent = e.message)),
);
$("kv-put").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const answer = await api("PUT", `/v1/kv/${encodeURIComponent($("kv-key").value)}`, {
      value: $("kv-value").value,
    });
    $("kv-result").textContent = `OK (revision ${answer.revision})`;
  } catch (error) {
    $("kv-result").textContent = `${error.code}: ${error.message}`;
  }
});

if (state.token !== "") {
  $("token").value = state.token;
  signIn();
}
