// Runs the docs page's render() (docs.js) on the API document under node and checks that the
// page shows every operation (method, path, summary, each response status) and every schema,
// and that nothing rendered as "undefined" or "[object Object]"; then runs the script as the
// page does, on a fake DOM.
//
//   node render_docs.js docs.js openapi.json
"use strict";

const fs = require("fs");
const path = require("path");
const docs = require(path.resolve(process.argv[2]));
const doc = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));

const { nav, main } = docs.render(doc);
const problems = [];
let operations = 0;
for (const [p, item] of Object.entries(doc.paths)) {
  for (const method of ["get", "put", "post", "delete", "options", "head", "patch"]) {
    const op = item[method];
    if (!op) continue;
    operations++;
    const anchor = "op-" + method + "-" + p.replace(/[^A-Za-z0-9]+/g, "-");
    if (!main.includes('id="' + anchor + '"')) problems.push(`no section for ${method} ${p}`);
    if (!nav.includes('href="#' + anchor + '"')) problems.push(`no navigation entry for ${method} ${p}`);
    if (op.summary && !main.includes(docs.escapeHtml(op.summary))) problems.push(`no summary for ${method} ${p}`);
    for (const status of Object.keys(op.responses || {}))
      if (!main.includes(">" + status + "</span>")) problems.push(`no response ${status} for ${method} ${p}`);
  }
}
for (const name of Object.keys((doc.components && doc.components.schemas) || {}))
  if (!main.includes('id="schema-' + name + '"')) problems.push(`no section for schema ${name}`);
for (const bad of ["undefined", "[object Object]", "NaN"])
  if (main.includes(">" + bad + "<") || main.includes(" " + bad + " ")) problems.push(`"${bad}" rendered`);
if (!main.includes('class="example"')) problems.push("no example rendered");

// The page's glue, as a browser runs it (a script, not a module): on DOMContentLoaded it
// fetches /openapi.json, fills the two elements and wires the filter. A minimal fake DOM.
async function runAsBrowser() {
  const vm = require("vm");
  const elements = {};
  const listeners = {};
  const element = (id) => ({
    id,
    innerHTML: "",
    hidden: false,
    listeners: {},
    addEventListener(type, fn) {
      this.listeners[type] = fn;
    },
    getAttribute() {
      return "";
    },
  });
  elements.nav = element("nav");
  elements.main = element("main");
  const fetched = [];
  const context = {
    document: {
      getElementById: (id) => elements[id] || (id === "filter" ? (elements.filter = element("filter")) : null),
      addEventListener: (type, fn) => (listeners[type] = fn),
      querySelectorAll: () => [],
    },
    location: { hash: "" },
    fetch: async (url) => {
      fetched.push(url);
      return { ok: true, status: 200, json: async () => doc };
    },
    console,
  };
  vm.createContext(context);
  vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), context);
  if (!listeners.DOMContentLoaded) return problems.push("the script waits for no DOMContentLoaded");
  await listeners.DOMContentLoaded();
  if (fetched.join() !== "/openapi.json") problems.push("the page fetched " + JSON.stringify(fetched));
  if (elements.main.innerHTML !== main) problems.push("the page's main element differs from render()");
  if (elements.nav.innerHTML !== nav) problems.push("the page's navigation differs from render()");
  if (!elements.filter || !elements.filter.listeners.input) problems.push("the filter is not wired");
}

runAsBrowser().then(finish, (e) => {
  problems.push("the page failed: " + e.stack);
  finish();
});

function finish() {
  for (const p of problems) console.log("PROBLEM " + p);
  console.log(`rendered ${operations} operations into ${main.length + nav.length} bytes, ${problems.length} problems`);
  process.exit(problems.length === 0 ? 0 : 1);
}
