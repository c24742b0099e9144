/**
 * `blixard acl …`: bootstrap, policies, tokens, certificate bindings and whoami. Rules are
 * given as text, one `--rule` each: `kv:read:app/`, `kv:write` (every key), `task:submit`,
 * `cluster:operator`, `node:report:3` (see `statemachine/acl/policy.ts`).
 */
import type { Command } from "commander";
import { formatRule, parseRule } from "../../statemachine/acl/policy.js";
import type { AclRule } from "../../statemachine/acl/types.js";
import { parsePositiveInt } from "../options.js";
import { formatTable } from "../table.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Registers the `acl` commands on `program`. */
export function registerAclCommands(program: Command): void {
  const acl = program
    .command("acl")
    .description("tokens, policies and client-certificate bindings (who may do what)");

  withClientOptions(
    acl
      .command("bootstrap")
      .description("create the first management token (works once per cluster; prints its secret)"),
  ).action(async (options: ClientOptions) => {
    const created = await clientFrom(options).acl.bootstrap();
    if (options.json === true) printJson(created);
    else {
      process.stdout.write(
        `management token created (accessor ${created.token.accessorId}); store the secret now, it is not shown again:\n` +
          `${created.secret}\n\nexport BLIXARD_TOKEN=${created.secret}\n`,
      );
    }
  });

  withClientOptions(
    acl.command("whoami").description("who your credential is and what it may do"),
  ).action(async (options: ClientOptions) => {
    const me = await clientFrom(options).acl.whoami();
    if (options.json === true) printJson(me);
    else {
      const who =
        me.kind === "token"
          ? `token ${me.accessorId ?? ""} (${me.name ?? ""})`
          : me.kind === "node"
            ? `node ${me.nodeId ?? ""}`
            : me.kind === "certificate"
              ? `client certificate ${me.commonName ?? ""}`
              : "anonymous (the node runs with --insecure)";
      process.stdout.write(
        `${who}\n${me.management ? "management: may do everything\n" : ""}` +
          (me.policies.length > 0 ? `policies: ${me.policies.join(", ")}\n` : "") +
          (me.rules.length > 0 ? `rules: ${me.rules.join(" ")}\n` : ""),
      );
    }
  });

  const policy = acl.command("policy").description("named lists of rules");
  withClientOptions(
    policy
      .command("create")
      .description(
        "create or replace a policy: --rule kv:read:app/ --rule task:submit … " +
          "(rules: kv:read|write[:PREFIX], task:submit|read|cancel, vm:manage|read, worker:manage|read, " +
          "cluster:operator|read, acl:manage|read, node:report:ID)",
      ),
  )
    .argument("<name>", "the policy's name")
    .option("--rule <rule>", "a rule, repeatable", collect)
    .option(
      "--rules-file <file>",
      'rules from a JSON file: [{resource, access, prefix?, nodeId?}] or ["kv:read:app/"]',
    )
    .option("--description <text>", "what it is for")
    .action(
      async (
        name: string,
        options: ClientOptions & { rule?: string[]; rulesFile?: string; description?: string },
      ) => {
        const rules: AclRule[] = (options.rule ?? []).map(parseRule);
        if (options.rulesFile !== undefined) {
          const { readFile } = await import("node:fs/promises");
          const parsed = JSON.parse(await readFile(options.rulesFile, "utf8")) as unknown[];
          for (const item of parsed)
            rules.push(typeof item === "string" ? parseRule(item) : (item as AclRule));
        }
        const saved = await clientFrom(options).acl.putPolicy(name, {
          rules,
          ...(options.description === undefined ? {} : { description: options.description }),
        });
        if (options.json === true) printJson(saved);
        else
          process.stdout.write(
            `policy ${saved.name}: ${saved.rules.map((r) => formatRule(r as AclRule)).join(" ")}\n`,
          );
      },
    );
  withClientOptions(policy.command("list").description("every policy and its rules")).action(
    async (options: ClientOptions) => {
      const policies = await clientFrom(options).acl.listPolicies();
      if (options.json === true) printJson({ policies });
      else {
        process.stdout.write(
          formatTable(
            ["NAME", "RULES", "DESCRIPTION"],
            policies.map((p) => [
              p.name,
              p.rules.map((r) => formatRule(r as AclRule)).join(" "),
              p.description,
            ]),
          ),
        );
      }
    },
  );
  withClientOptions(policy.command("delete").description("delete a policy"))
    .argument("<name>", "the policy's name")
    .action(async (name: string, options: ClientOptions) => {
      await clientFrom(options).acl.deletePolicy(name);
      if (options.json === true) printJson({ deleted: true, name });
      else process.stdout.write(`policy ${name} deleted\n`);
    });

  const token = acl
    .command("token")
    .description("bearer tokens (stored hashed; the secret is shown once)");
  withClientOptions(token.command("create").description("create a token; prints its secret once"))
    .option("--name <name>", "a name for people")
    .option("--description <text>", "what it is for")
    .option("--policy <name>", "a policy it holds, repeatable", collect)
    .option("--management", "may do everything (like the bootstrap token)")
    .option("--ttl-ms <ms>", "expires this long from now", parsePositiveInt)
    .action(
      async (
        options: ClientOptions & {
          name?: string;
          description?: string;
          policy?: string[];
          management?: boolean;
          ttlMs?: number;
        },
      ) => {
        const created = await clientFrom(options).acl.createToken({
          ...(options.name === undefined ? {} : { name: options.name }),
          ...(options.description === undefined ? {} : { description: options.description }),
          ...(options.policy === undefined ? {} : { policies: options.policy }),
          ...(options.management === true ? { management: true } : {}),
          ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
        });
        if (options.json === true) printJson(created);
        else {
          process.stdout.write(
            `token ${created.token.accessorId} created; its secret (not shown again):\n${created.secret}\n`,
          );
        }
      },
    );
  withClientOptions(token.command("list").description("every token, without secrets")).action(
    async (options: ClientOptions) => {
      const tokens = await clientFrom(options).acl.listTokens();
      if (options.json === true) printJson({ tokens });
      else {
        process.stdout.write(
          formatTable(
            ["ACCESSOR", "NAME", "POLICIES", "EXPIRES"],
            tokens.map((t) => [
              t.accessorId,
              t.name,
              t.management ? "(management)" : t.policies.join(","),
              t.expiresAtMs === null ? "never" : new Date(t.expiresAtMs).toISOString(),
            ]),
          ),
        );
      }
    },
  );
  withClientOptions(token.command("revoke").description("revoke a token by accessor id"))
    .argument("<accessor>", "the token's accessor id (acl token list)")
    .action(async (accessor: string, options: ClientOptions) => {
      await clientFrom(options).acl.revokeToken(accessor);
      if (options.json === true) printJson({ deleted: true, accessorId: accessor });
      else process.stdout.write(`token ${accessor} revoked\n`);
    });

  const binding = acl
    .command("cert-binding")
    .description("map a client certificate's common name to policies (like etcd's CN → user)");
  withClientOptions(binding.command("set").description("bind common name CN to policies"))
    .argument("<cn>", "the certificate's common name")
    .option("--policy <name>", "a policy, repeatable", collect)
    .action(async (cn: string, options: ClientOptions & { policy?: string[] }) => {
      const saved = await clientFrom(options).acl.putCertBinding(cn, {
        policies: options.policy ?? [],
      });
      if (options.json === true) printJson(saved);
      else process.stdout.write(`certificate ${cn}: ${saved.policies.join(", ")}\n`);
    });
  withClientOptions(binding.command("delete").description("remove a binding"))
    .argument("<cn>", "the certificate's common name")
    .action(async (cn: string, options: ClientOptions) => {
      await clientFrom(options).acl.deleteCertBinding(cn);
      if (options.json === true) printJson({ deleted: true, commonName: cn });
      else process.stdout.write(`binding of ${cn} deleted\n`);
    });
}
