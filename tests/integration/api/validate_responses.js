// Validates recorded HTTP exchanges against the API document, independently of sluice's code:
// each (method, path) must be a documented operation, each status one of its responses (or
// `default`), the Content-Type one of that response's media types, and a JSON body must
// validate against the response's schema (ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses it);
// a JSON request body the server accepted (2xx) must validate against the request schema.
//
//   node validate_responses.js INPUT.json
//   INPUT: {"document": <openapi.json>,
//           "exchanges": [{"method","target","status","contentType","body","requestBody"?}]}
// Prints one line per problem and a summary; exits 1 when any exchange does not match.
"use strict";

const fs = require("fs");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const doc = input.document;

const ajv = new Ajv2020({ strict: true, allErrors: true, strictRequired: false });
addFormats(ajv);
// OpenAPI's own schema keywords next to JSON Schema's.
ajv.addKeyword("example");
ajv.addVocabulary(["openapi", "info", "servers", "security", "tags", "paths", "components",
  "x-sluice-access", "webhooks", "externalDocs", "jsonSchemaDialect"]);
ajv.addSchema(doc, "openapi.json");

function pointer(parts) {
  return "#/" + parts.map((p) => String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
}

// Follows local references; returns the node and the JSON pointer of where it is.
function resolve(node, parts) {
  let at = pointer(parts);
  const seen = new Set();
  while (node && node.$ref && !seen.has(node.$ref)) {
    seen.add(node.$ref);
    at = node.$ref;
    node = doc;
    for (const raw of at.slice(2).split("/")) node = node[raw.replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  return { node, at };
}

// The documented path a concrete path matches; literal segments win over templates, as in
// sluice's router. A last `{path}` of /proxy/ takes the rest of the path (the router's {path*}).
const templates = Object.keys(doc.paths).map((template) => {
  const segments = template.split("/");
  const source = segments
    .map((s, i) => {
      if (!/^\{.+\}$/.test(s)) return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      return i === segments.length - 1 && template.startsWith("/proxy/") ? ".*" : "[^/]+";
    })
    .join("/");
  return { template, regex: new RegExp("^" + source + "$"), literals: segments.filter((s) => !/^\{/.test(s)).length };
});

function templateOf(path) {
  let best = null;
  for (const t of templates) if (t.regex.test(path) && (!best || t.literals > best.literals)) best = t;
  return best && best.template;
}

function mediaTypeOf(content, contentType) {
  const type = (contentType || "").split(";")[0].trim().toLowerCase();
  if (content[type]) return type;
  const wildcard = type.split("/")[0] + "/*";
  if (content[wildcard]) return wildcard;
  if (content["*/*"]) return "*/*";
  return null;
}

const problems = [];
const covered = new Set();
const validators = new Map();
for (const [i, x] of input.exchanges.entries()) {
  const where = `${x.method} ${x.target} -> ${x.status}`;
  const path = x.target.split("?")[0];
  const template = templateOf(path);
  if (!template) {
    problems.push(`${where}: the path is not documented`);
    continue;
  }
  const item = doc.paths[template];
  let method = x.method.toLowerCase();
  if (method === "head" && !item.head) method = "get";
  const op = item[method];
  if (!op) {
    problems.push(`${where}: ${x.method} ${template} is not documented`);
    continue;
  }
  const status = String(x.status);
  // `default` stands for the errors only: every success status must be documented itself.
  const key = op.responses[status]
    ? status
    : op.responses[status[0] + "XX"]
      ? status[0] + "XX"
      : x.status >= 400
        ? "default"
        : null;
  if (!key || !op.responses[key]) {
    problems.push(`${where}: status ${status} is not documented for ${x.method} ${template}`);
    continue;
  }
  covered.add(`${x.method} ${template} ${key}`);
  // A request the server accepted must be one the document allows.
  if (x.status < 300 && op.requestBody && x.requestBody) {
    const { node: body, at: bodyAt } = resolve(op.requestBody, ["paths", template, method, "requestBody"]);
    const json = (body.content || {})["application/json"];
    if (json && json.schema) {
      const ref = "openapi.json" + bodyAt + pointer(["content", "application/json", "schema"]).slice(1);
      if (!validators.has(ref)) validators.set(ref, ajv.compile({ $ref: ref }));
      const validate = validators.get(ref);
      let sent;
      try {
        sent = JSON.parse(x.requestBody);
      } catch (e) {
        sent = undefined;
      }
      if (sent === undefined || !validate(sent)) {
        const errors = (validate.errors || []).map((e) => `${e.instancePath || "/"} ${e.message}`);
        problems.push(`${where}: the server accepted a request body the document refuses: ${errors.slice(0, 8).join("; ")}\n    request: ${x.requestBody.slice(0, 400)}`);
      }
    }
  }
  const { node: response, at } = resolve(op.responses[key], ["paths", template, method, "responses", key]);
  const content = response.content || {};
  if (Object.keys(content).length === 0) {
    if (x.body !== "") problems.push(`${where}: a body where the document has none: ${x.body.slice(0, 200)}`);
    continue;
  }
  const media = mediaTypeOf(content, x.contentType);
  if (!media) {
    problems.push(`${where}: Content-Type ${x.contentType} is not one of ${Object.keys(content).join(", ")}`);
    continue;
  }
  // A HEAD answer has the headers of the GET and no body.
  if (x.method === "HEAD") continue;
  const schema = content[media].schema;
  if (!schema || Object.keys(schema).length === 0) continue;
  const isJson = /(^|\/|\+)json$/.test((x.contentType || "").split(";")[0].trim());
  let value = x.body;
  if (isJson) {
    try {
      value = JSON.parse(x.body);
    } catch (e) {
      problems.push(`${where}: the body is not JSON: ${e.message}`);
      continue;
    }
  }
  const ref = "openapi.json" + at + pointer(["content", media, "schema"]).slice(1);
  if (!validators.has(ref)) validators.set(ref, ajv.compile({ $ref: ref }));
  const validate = validators.get(ref);
  if (!validate(value)) {
    const errors = validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}${e.params && e.params.additionalProperty ? " (" + e.params.additionalProperty + ")" : ""}`);
    problems.push(`${where}: does not match ${template} ${method} ${key}: ${errors.slice(0, 8).join("; ")}\n    body: ${x.body.slice(0, 400)}`);
  }
}

for (const p of problems) console.log("MISMATCH " + p);
console.log(`validated ${input.exchanges.length} exchanges, ${covered.size} (operation, status) pairs, ${problems.length} mismatches`);
for (const c of [...covered].sort()) console.log("covered " + c);
const exercised = new Set([...covered].map((c) => c.split(" ").slice(0, 2).join(" ")));
for (const [template, item] of Object.entries(doc.paths))
  for (const method of ["get", "put", "post", "delete", "options", "head", "patch"])
    if (item[method] && !exercised.has(`${method.toUpperCase()} ${template}`))
      console.log(`not exercised ${method.toUpperCase()} ${template}`);
process.exit(problems.length === 0 ? 0 : 1);
