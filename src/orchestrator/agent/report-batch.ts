/**
 * What the {@link Reporter} needs to send many reports as one `agentReports` command: which
 * reports may go in a batch, how many fit, and the per-report outcomes read back from the
 * answer. Private to the agent folder.
 */
import { UnavailableError } from "../../common/errors.js";
import type {
  AgentReport,
  BatchItemOutcome,
  OrchestratorCommand,
} from "../../statemachine/orchestrator/commands.js";
import {
  MAX_AGENT_REPORTS_PER_BATCH,
  MAX_COMMAND_BYTES,
} from "../../statemachine/orchestrator/limits.js";

/** Most reports in one batch: the model's own bound. */
export const MAX_REPORTS_PER_BATCH = MAX_AGENT_REPORTS_PER_BATCH;

/**
 * Most characters of output and error text in one batch. A character takes at most 6 bytes
 * encoded (a JSON-escaped control character), so a batch within this budget stays under
 * {@link MAX_COMMAND_BYTES} with room for the fixed fields of a full batch; a single report over
 * it goes on its own (as it always did).
 */
export const MAX_BATCH_TEXT_CHARS = MAX_COMMAND_BYTES / 8;

/** The report as an `agentReports` item, or undefined for a command no batch may carry. */
export function batchableReport(command: OrchestratorCommand): AgentReport | undefined {
  switch (command.type) {
    case "taskStarted":
    case "taskFinished":
    case "vmObserved":
      return command;
    default:
      return undefined;
  }
}

/** The free text a report carries (its share of {@link MAX_BATCH_TEXT_CHARS}). Allocates nothing. */
export function reportTextChars(report: AgentReport): number {
  switch (report.type) {
    case "taskStarted":
      return 0;
    case "taskFinished":
      return report.result.stdout.length + report.result.stderr.length + report.result.error.length;
    case "vmObserved":
      return report.error.length;
  }
}

/**
 * The per-report outcomes of an applied `agentReports` command, from what the proposer resolved
 * with (the model's `batch` result, or the report route's answer: both carry `items`).
 * @throws UnavailableError when they are missing or do not match the batch (a server of a build
 * that did not answer them): every report is then retried, which is harmless (reports are
 * idempotent).
 */
export function batchOutcomes(answer: unknown, reports: number): readonly BatchItemOutcome[] {
  const items = (answer as { items?: unknown } | null | undefined)?.items;
  if (!Array.isArray(items) || items.length !== reports) {
    throw new UnavailableError(
      `a server answered a batch of ${reports} reports without one outcome per report; retrying`,
    );
  }
  for (const item of items) {
    const outcome = item as Partial<BatchItemOutcome> | null;
    if (outcome === null || typeof outcome !== "object" || typeof outcome.ok !== "boolean") {
      throw new UnavailableError("a server answered a batch of reports with a malformed outcome");
    }
  }
  return items as BatchItemOutcome[];
}
