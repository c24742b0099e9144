#!/usr/bin/env node
// The installed entry point. It runs the compiled CLI; `npm install` builds it through `prepare`.
import { main } from "../dist/cli/main.js";

process.exitCode = await main(process.argv);
