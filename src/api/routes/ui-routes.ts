/**
 * The dashboard: the static files of `ui/` (shipped in the package; no build step, no CDN),
 * served by every node at `/ui`. The files are open (a browser must load the page before it can
 * ask for a token); everything they show comes from the API with the user's token.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { NotFoundError } from "../../common/errors.js";
import { RawBody, type RouteSpec } from "../route.js";

/** The dashboard's files and their media types. */
const FILES: Readonly<Record<string, string>> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
};

/** `ui/` at the package root, from `src/api/routes/` and from `dist/api/routes/` alike. */
const UI_DIR = fileURLToPath(new URL("../../../ui/", import.meta.url));

/** Reads the dashboard's files once (missing files are served as 404). Throws nothing. */
function loadFiles(): Map<string, RawBody> {
  const files = new Map<string, RawBody>();
  for (const [name, type] of Object.entries(FILES)) {
    try {
      files.set(name, new RawBody(type, readFileSync(`${UI_DIR}${name}`, "utf8")));
    } catch {
      // Not shipped (a stripped install): the route answers 404.
    }
  }
  return files;
}

/** The dashboard routes. */
export function uiRoutes(): RouteSpec[] {
  const files = loadFiles();
  const file = (name: string): RawBody => {
    const body = files.get(name);
    if (body === undefined) throw new NotFoundError(`the dashboard has no file ${name}`);
    return body;
  };
  return [
    {
      method: "GET",
      url: "/ui",
      tag: "ui",
      summary: "The web dashboard (HTML; it asks for a token, which the API calls then carry)",
      permission: "open",
      handler: () => file("index.html"),
    },
    {
      method: "GET",
      url: "/ui/:file",
      tag: "ui",
      summary: "The dashboard's script and style sheet",
      permission: "open",
      handler: (context) => file(context.params["file"] ?? ""),
    },
  ];
}
