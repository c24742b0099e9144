import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * ARCHITECTURE.md's file tables are data: each section headed by one folder (`src/raft/`) with a
 * table whose first column is `file` lists that folder's files. Every listed file or folder
 * exists, and every source file under the folder is listed (a folder written `quorum/` covers
 * everything under it; tests, `index.ts` and `testing.ts` need no row).
 */
interface FileTable {
  readonly folder: string;
  readonly listed: readonly string[];
}

const markdown = readFileSync("ARCHITECTURE.md", "utf8");

/** `a.ts`, `{x,y}.ts` and `dir/` entries of one table cell, relative to the folder. */
function cellPaths(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].flatMap(([, path]) => {
    const brace = /^(.*)\{([^}]+)\}(.*)$/.exec(path ?? "");
    if (brace === null) return [path ?? ""];
    const [, before, options, after] = brace;
    return (options ?? "").split(",").map((option) => `${before}${option}${after}`);
  });
}

function fileTables(): FileTable[] {
  const tables: FileTable[] = [];
  let folder: string | undefined;
  let inTable = false;
  for (const line of markdown.split("\n")) {
    const heading = /^##+ .*\(`(src\/[^`]+\/)`\)\s*$/.exec(line);
    if (heading !== null) {
      folder = heading[1];
      inTable = false;
      continue;
    }
    if (line.startsWith("#")) folder = undefined;
    if (folder === undefined) continue;
    if (/^\|\s*file\s*\|/.test(line)) {
      inTable = true;
      tables.push({ folder, listed: [] });
      continue;
    }
    if (!inTable) continue;
    if (!line.startsWith("|")) {
      inTable = false;
      continue;
    }
    const firstCell = line.split("|")[1] ?? "";
    if (/^\s*-+\s*$/.test(firstCell)) continue;
    const table = tables[tables.length - 1];
    if (table !== undefined) (table.listed as string[]).push(...cellPaths(firstCell));
  }
  return tables;
}

function isSource(name: string): boolean {
  return (
    name.endsWith(".ts") &&
    !name.endsWith(".test.ts") &&
    name !== "index.ts" &&
    name !== "testing.ts"
  );
}

/** Source files under `root`, recursively, relative to it. */
function sourceFiles(root: string, dir = ""): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = dir === "" ? name : `${dir}/${name}`;
    if (statSync(join(root, path)).isDirectory()) return sourceFiles(root, path);
    return isSource(name) ? [path] : [];
  });
}

const tables = fileTables();

describe("ARCHITECTURE.md file tables match src/", () => {
  it("finds the file tables of the core, storage and CLI", () => {
    expect(tables.map((t) => t.folder)).toEqual(["src/raft/", "src/storage/", "src/cli/"]);
  });

  for (const { folder, listed } of tables) {
    it(`lists only files that exist in ${folder}`, () => {
      const missing = listed.filter((path) => !existsSync(join(folder, path)));
      expect(missing).toEqual([]);
    });

    it(`lists every source file under ${folder}`, () => {
      const folders = listed.filter((path) => path.endsWith("/"));
      const unlisted = sourceFiles(folder).filter(
        (path) => !listed.includes(path) && !folders.some((dir) => path.startsWith(dir)),
      );
      expect(unlisted).toEqual([]);
    });
  }
});
