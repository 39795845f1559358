// The API page: renders /openapi.json (endpoints by tag, parameters, request and response
// schemas, examples) with nothing but this script, so it works with no internet. render() is a
// pure function from the document to HTML, which the tests run under node.
"use strict";

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

function escapeHtml(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

// The little Markdown the document uses: paragraphs, `code`, **bold**, "- " lists.
function markdown(text) {
  if (!text) return "";
  const inline = (s) =>
    escapeHtml(s)
      .replace(/`([^`]+)`/g, "<code>$1</code>")
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
  return String(text)
    .trim()
    .split(/\n\s*\n/)
    .map((block) => {
      const lines = block.split("\n");
      if (lines.every((l) => /^\s*- /.test(l) || /^\s{2,}\S/.test(l))) {
        const items = [];
        for (const l of lines) {
          if (/^\s*- /.test(l)) items.push(l.replace(/^\s*- /, ""));
          else items[items.length - 1] += " " + l.trim();
        }
        return "<ul>" + items.map((i) => "<li>" + inline(i) + "</li>").join("") + "</ul>";
      }
      return "<p>" + inline(lines.join(" ")) + "</p>";
    })
    .join("");
}

function refName(ref) {
  return ref.split("/").pop();
}

// Follows a local "#/a/b" reference; unknown ones resolve to null.
function resolveRef(doc, ref) {
  if (typeof ref !== "string" || !ref.startsWith("#/")) return null;
  let node = doc;
  for (const raw of ref.slice(2).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (node === null || typeof node !== "object" || !(key in node)) return null;
    node = node[key];
  }
  return node;
}

function deref(doc, node) {
  const seen = new Set();
  while (node && typeof node === "object" && node.$ref && !seen.has(node.$ref)) {
    seen.add(node.$ref);
    node = resolveRef(doc, node.$ref);
  }
  return node || {};
}

function typeLabel(doc, schema) {
  if (!schema || typeof schema !== "object") return "any";
  if (schema.$ref) return refName(schema.$ref);
  if ("const" in schema) return JSON.stringify(schema.const);
  const alternatives = schema.oneOf || schema.anyOf;
  if (alternatives) return alternatives.map((s) => typeLabel(doc, s)).join(" | ");
  if (schema.allOf && schema.allOf.length === 1 && !schema.type) return typeLabel(doc, schema.allOf[0]);
  let type = schema.type;
  if (Array.isArray(type)) type = type.join(" | ");
  if (type === "array" || (Array.isArray(schema.type) && schema.type.includes("array")))
    return String(type).replace("array", "array of " + typeLabel(doc, schema.items));
  return type || (schema.properties ? "object" : "any");
}

function constraints(schema) {
  const out = [];
  const add = (label, value) => out.push(label + " " + value);
  if (schema.enum) add("one of", schema.enum.map((v) => JSON.stringify(v)).join(", "));
  if (schema.format) add("format", schema.format);
  if (schema.pattern) add("pattern", schema.pattern);
  if (schema.minimum !== undefined) add("≥", schema.minimum);
  if (schema.maximum !== undefined) add("≤", schema.maximum);
  if (schema.minLength !== undefined) add("min length", schema.minLength);
  if (schema.maxLength !== undefined) add("max length", schema.maxLength);
  if (schema.minItems !== undefined) add("min items", schema.minItems);
  if (schema.maxItems !== undefined) add("max items", schema.maxItems);
  if (schema.default !== undefined) add("default", JSON.stringify(schema.default));
  return out;
}

// A schema as nested property lists; references are expanded up to `depth` levels and named.
function schemaHtml(doc, schema, depth, seen) {
  seen = seen || new Set();
  if (!schema || typeof schema !== "object") return '<span class="type">any</span>';
  if (schema.$ref) {
    const name = refName(schema.$ref);
    const target = deref(doc, schema);
    if (seen.has(schema.$ref) || depth <= 0)
      return '<a class="type" href="#schema-' + escapeHtml(name) + '">' + escapeHtml(name) + "</a>";
    const next = new Set(seen);
    next.add(schema.$ref);
    return (
      '<a class="type" href="#schema-' + escapeHtml(name) + '">' + escapeHtml(name) + "</a>" +
      schemaHtml(doc, target, depth - 1, next)
    );
  }
  let html = "";
  if (schema.description) html += '<div class="description">' + markdown(schema.description) + "</div>";
  const alternatives = schema.oneOf || schema.anyOf;
  if (alternatives) {
    html += '<div class="alternatives">' + (schema.oneOf ? "one of:" : "any of:") + "<ul>";
    for (const alt of alternatives) html += "<li>" + schemaHtml(doc, alt, depth, seen) + "</li>";
    html += "</ul></div>";
  }
  for (const part of schema.allOf || []) html += schemaHtml(doc, part, depth, seen);
  const props = schema.properties || {};
  const names = Object.keys(props);
  if (names.length > 0) {
    const required = new Set(schema.required || []);
    html += '<table class="properties"><tbody>';
    for (const name of names) {
      const prop = props[name];
      const resolved = deref(doc, prop);
      const facts = constraints(resolved);
      html +=
        "<tr><td><code>" + escapeHtml(name) + "</code>" +
        (required.has(name) ? ' <span class="required">required</span>' : "") +
        '</td><td><span class="type">' + escapeHtml(typeLabel(doc, prop)) + "</span>" +
        (facts.length ? '<div class="facts">' + escapeHtml(facts.join("; ")) + "</div>" : "") +
        (prop.description ? markdown(prop.description) : "");
      const nested = prop.$ref ? resolved : prop;
      const itemSchema = nested.items ? deref(doc, nested.items) : null;
      if (depth > 0 && (nested.properties || nested.oneOf || (itemSchema && itemSchema.properties)))
        html += schemaHtml(doc, nested.items && !nested.properties ? nested.items : nested, depth - 1, seen);
      html += "</td></tr>";
    }
    html += "</tbody></table>";
  }
  if (schema.additionalProperties && typeof schema.additionalProperties === "object")
    html +=
      '<div class="facts">other keys: ' + escapeHtml(typeLabel(doc, schema.additionalProperties)) + "</div>";
  if (!names.length && !alternatives && !schema.allOf) {
    const facts = constraints(schema);
    html +=
      '<span class="type">' + escapeHtml(typeLabel(doc, schema)) + "</span>" +
      (facts.length ? '<div class="facts">' + escapeHtml(facts.join("; ")) + "</div>" : "");
    if (schema.items && depth > 0) html += schemaHtml(doc, schema.items, depth - 1, seen);
  }
  return html;
}

// An example built from the schema, for content the document gives none for.
function exampleOf(doc, schema, depth) {
  schema = deref(doc, schema);
  if (depth > 6) return null;
  if (schema.example !== undefined) return schema.example;
  if (schema.const !== undefined) return schema.const;
  if (schema.default !== undefined) return schema.default;
  if (schema.enum) return schema.enum[0];
  if (schema.oneOf || schema.anyOf) return exampleOf(doc, (schema.oneOf || schema.anyOf)[0], depth + 1);
  if (schema.allOf) {
    const merged = {};
    for (const part of schema.allOf) Object.assign(merged, exampleOf(doc, part, depth + 1));
    for (const [k, v] of Object.entries(schema.properties || {})) merged[k] = exampleOf(doc, v, depth + 1);
    return merged;
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (type === "object" || schema.properties) {
    const out = {};
    for (const [k, v] of Object.entries(schema.properties || {})) out[k] = exampleOf(doc, v, depth + 1);
    return out;
  }
  if (type === "array") return [exampleOf(doc, schema.items || {}, depth + 1)];
  if (type === "integer") return schema.minimum !== undefined ? schema.minimum : 0;
  if (type === "number") return 0;
  if (type === "boolean") return true;
  if (type === "string") {
    if (schema.format === "date-time") return "2026-12-02T14:40:01.123Z";
    if (schema.format === "uuid") return "01938a5d-ac96-774b-bcce-b302099a8057";
    return "string";
  }
  return null;
}

// `depth` 0 shows the schema's name only (errors: the Error schema is shown once, below).
function contentHtml(doc, content, depth) {
  let html = "";
  for (const [type, media] of Object.entries(content || {})) {
    html += '<div class="media"><div class="media-type">' + escapeHtml(type) + "</div>";
    const schema = media.schema;
    if (schema && Object.keys(schema).length) html += schemaHtml(doc, schema, depth);
    let example = media.example;
    let generated = false;
    if (example === undefined && media.examples) {
      const first = Object.values(media.examples)[0];
      example = first && first.value;
    }
    if (example === undefined && depth > 0 && type.includes("json") && schema && Object.keys(schema).length) {
      example = exampleOf(doc, schema, 0);
      generated = true;
    }
    if (example !== undefined) {
      const text = typeof example === "string" && !type.includes("json") ? example : JSON.stringify(example, null, 2);
      html +=
        '<div class="example-label">' + (generated ? "example (from the schema)" : "example") +
        "</div><pre class=\"example\">" + escapeHtml(text) + "</pre>";
    }
    html += "</div>";
  }
  return html;
}

function anchorOf(method, path) {
  return "op-" + method + "-" + path.replace(/[^A-Za-z0-9]+/g, "-");
}

function operationHtml(doc, path, method, op, pathItem) {
  const params = [...(pathItem.parameters || []), ...(op.parameters || [])].map((p) => deref(doc, p));
  let html =
    '<section class="operation" id="' + anchorOf(method, path) + '" data-search="' +
    escapeHtml((method + " " + path + " " + (op.summary || "")).toLowerCase()) + '">' +
    '<h3><span class="method method-' + method + '">' + method.toUpperCase() + '</span> <code class="path">' +
    escapeHtml(path) + "</code></h3>";
  if (op.summary) html += '<div class="summary">' + escapeHtml(op.summary) + "</div>";
  const access = op["x-sluice-access"];
  if (access) html += '<div class="access">access: <span class="role role-' + escapeHtml(access) + '">' + escapeHtml(access) + "</span></div>";
  html += markdown(pathItem.description) + markdown(op.description);
  if (params.length) {
    html += "<h4>Parameters</h4><table class=\"parameters\"><thead><tr><th>name</th><th>in</th><th>type</th><th>description</th></tr></thead><tbody>";
    for (const p of params) {
      const schema = deref(doc, p.schema || {});
      const facts = constraints(schema);
      html +=
        "<tr><td><code>" + escapeHtml(p.name) + "</code>" + (p.required ? ' <span class="required">required</span>' : "") +
        "</td><td>" + escapeHtml(p.in) + '</td><td><span class="type">' + escapeHtml(typeLabel(doc, p.schema || {})) +
        "</span>" + (facts.length ? '<div class="facts">' + escapeHtml(facts.join("; ")) + "</div>" : "") +
        "</td><td>" + markdown(p.description) + "</td></tr>";
    }
    html += "</tbody></table>";
  }
  if (op.requestBody) {
    const body = deref(doc, op.requestBody);
    html += "<h4>Request body" + (body.required ? ' <span class="required">required</span>' : "") + "</h4>";
    html += markdown(body.description) + contentHtml(doc, body.content, 3);
  }
  html += "<h4>Responses</h4>";
  for (const [status, ref] of Object.entries(op.responses || {})) {
    const response = deref(doc, ref);
    html +=
      '<details class="response"' + (/^2/.test(status) ? " open" : "") + '><summary><span class="status status-' +
      escapeHtml(status[0]) + '">' + escapeHtml(status) + "</span> " + escapeHtml(response.description || "") + "</summary>";
    const headers = Object.keys(response.headers || {}).filter((h) => h !== "X-Request-Id");
    if (headers.length) html += '<div class="facts">headers: ' + escapeHtml(headers.join(", ")) + "</div>";
    html += contentHtml(doc, response.content, /^[23]/.test(status) ? 3 : 0) + "</details>";
  }
  return html + "</section>";
}

// Every operation under its first tag, in the document's tag order.
function groupByTag(doc) {
  const groups = new Map();
  for (const tag of doc.tags || []) groups.set(tag.name, { tag, operations: [] });
  for (const [path, pathItem] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = pathItem[method];
      if (!op) continue;
      const name = (op.tags && op.tags[0]) || "Other";
      if (!groups.has(name)) groups.set(name, { tag: { name }, operations: [] });
      groups.get(name).operations.push({ path, method, op, pathItem });
    }
  }
  return [...groups.values()].filter((g) => g.operations.length > 0);
}

function render(doc) {
  const groups = groupByTag(doc);
  let nav = '<input id="filter" type="search" placeholder="Filter endpoints" aria-label="Filter endpoints">';
  let main =
    "<header><h1>" + escapeHtml((doc.info && doc.info.title) || "API") + ' <span class="version">' +
    escapeHtml((doc.info && doc.info.version) || "") + "</span></h1>" +
    '<p class="links"><a href="/openapi.yaml">openapi.yaml</a> · <a href="/openapi.json">openapi.json</a></p>' +
    markdown(doc.info && doc.info.description) + "</header>";
  for (const group of groups) {
    const id = "tag-" + group.tag.name.replace(/[^A-Za-z0-9]+/g, "-");
    nav += '<div class="nav-group"><a class="nav-tag" href="#' + id + '">' + escapeHtml(group.tag.name) + "</a><ul>";
    main += '<section class="tag" id="' + id + '"><h2>' + escapeHtml(group.tag.name) + "</h2>" + markdown(group.tag.description);
    for (const { path, method, op, pathItem } of group.operations) {
      nav +=
        '<li data-search="' + escapeHtml((method + " " + path + " " + (op.summary || "")).toLowerCase()) + '"><a href="#' +
        anchorOf(method, path) + '"><span class="method method-' + method + '">' + method.toUpperCase() + "</span> " +
        escapeHtml(path) + "</a></li>";
      main += operationHtml(doc, path, method, op, pathItem);
    }
    nav += "</ul></div>";
    main += "</section>";
  }
  const schemas = (doc.components && doc.components.schemas) || {};
  main += '<section class="tag" id="schemas"><h2>Schemas</h2>';
  for (const [name, schema] of Object.entries(schemas))
    main += '<section class="schema" id="schema-' + escapeHtml(name) + '"><h3>' + escapeHtml(name) + "</h3>" + schemaHtml(doc, schema, 1) + "</section>";
  main += "</section>";
  nav += '<div class="nav-group"><a class="nav-tag" href="#schemas">Schemas</a></div>';
  return { nav, main };
}

function applyFilter(root, text) {
  const needle = text.trim().toLowerCase();
  for (const el of root.querySelectorAll("[data-search]"))
    el.hidden = needle !== "" && !el.getAttribute("data-search").includes(needle);
}

async function start() {
  const nav = document.getElementById("nav");
  const main = document.getElementById("main");
  try {
    const response = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error("GET /openapi.json answered " + response.status);
    const rendered = render(await response.json());
    nav.innerHTML = rendered.nav;
    main.innerHTML = rendered.main;
    document.getElementById("filter").addEventListener("input", (e) => applyFilter(document, e.target.value));
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  } catch (e) {
    main.innerHTML = '<p class="error">The API document could not be loaded: ' + escapeHtml(e.message) + "</p>";
  }
}

if (typeof module !== "undefined" && module.exports) {
  module.exports = { render, markdown, escapeHtml, exampleOf, schemaHtml };
} else {
  document.addEventListener("DOMContentLoaded", start);
}
