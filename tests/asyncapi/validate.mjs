// Parses an AsyncAPI document with the AsyncAPI initiative's own parser (which validates it
// against the specification's JSON Schema and its Spectral rules) and prints one JSON
// object: the diagnostics, and what the parsed model holds, for the Rust test to compare.
// Usage: node validate.mjs <document.json>   (the parser is resolved from this folder, or
// from the folder named by ASYNCAPI_PARSER_DIR)
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.resolve(process.env.ASYNCAPI_PARSER_DIR || path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(path.join(here, "package.json"));
const { Parser } = require("@asyncapi/parser");

const text = readFileSync(process.argv[2], "utf8");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text);
const severities = ["error", "warning", "information", "hint"];
const report = {
  diagnostics: diagnostics.map((d) => ({
    severity: severities[d.severity] ?? String(d.severity),
    code: d.code,
    message: d.message,
    path: d.path.join("/"),
  })),
  parsed: document !== undefined,
};
if (document) {
  report.version = document.version();
  report.channels = document.channels().all().map((c) => ({
    id: c.id(),
    address: c.address(),
    messages: c.messages().all().map((m) => m.id()),
  }));
  report.operations = document.operations().all().map((o) => ({
    id: o.id(),
    action: o.action(),
    channels: o.channels().all().map((c) => c.address()),
    messages: o.messages().all().map((m) => m.id()),
  }));
  report.messages = document.components().messages().all().map((m) => m.id());
}
console.log(JSON.stringify(report));
