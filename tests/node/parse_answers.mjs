// Runs progress answers through the parsers that upload-progress pages use,
// and checks what each parser makes of them.
//   node parse_answers.mjs ANSWERS.json
// ANSWERS.json: a list of {label, format, content_type, body, callback?,
// expect: {state, received?, size?, status?}}.  Prints one "ok" or
// "not ok" line per answer and parser; exits 1 if any is "not ok".
import { readFileSync } from "node:fs";
import vm from "node:vm";
import { DOMParser } from "@xmldom/xmldom";

const answers = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failures = 0;

function report(label, parser, problem) {
  if (problem) {
    failures += 1;
    console.log(`not ok ${label} ${parser}: ${problem}`);
  } else {
    console.log(`ok ${label} ${parser}`);
  }
}

// What a page sees: eval() in a page of its own.
function evalInPage(code, globals = {}) {
  return vm.runInNewContext(code, globals);
}

function sameFields(got, expect) {
  if (got === null || typeof got !== "object") return `not an object: ${got}`;
  for (const [key, value] of Object.entries(expect)) {
    if (got[key] !== value) return `${key} is ${got[key]}, want ${value}`;
  }
  const extra = Object.keys(got).filter((k) => !(k in expect) && !["speed", "eta"].includes(k));
  if (extra.length) return `unexpected keys ${extra}`;
  return rateProblem(got);
}

// speed and eta: integers; eta = ceil((size - received) / speed)
function rateProblem(got) {
  if (!("speed" in got) && !("eta" in got)) return null;
  if (got.state !== "uploading") return `speed/eta in state ${got.state}`;
  if (!Number.isInteger(got.speed) || got.speed < 0) return `bad speed ${got.speed}`;
  if (!("eta" in got)) {
    return got.speed > 0 && "size" in got ? "eta missing though speed and size are known" : null;
  }
  if (!("size" in got) || got.speed === 0) return "eta without size or speed";
  const want = Math.ceil((got.size - got.received) / got.speed);
  return got.eta === want ? null : `eta ${got.eta}, want ${want}`;
}

function attempt(parse) {
  try {
    return { value: parse() };
  } catch (e) {
    return { error: e };
  }
}

// callback "a.b$c" -> globals {a: {b$c: fn}}
function jsonpGlobals(callback, receive) {
  const globals = {};
  const names = callback.split(".");
  let at = globals;
  for (const name of names.slice(0, -1)) at = at[name] = {};
  at[names[names.length - 1]] = receive;
  return globals;
}

function checkJson(a) {
  const t = a.body;
  const parsers = {
    "JSON.parse": () => JSON.parse(t),
    "eval('(' + t + ')')": () => evalInPage("(" + t + ")"),
    "eval('new Object(' + t + ')')": () => evalInPage("new Object(" + t + ")"),
  };
  for (const [name, parse] of Object.entries(parsers)) {
    const r = attempt(parse);
    report(a.label, name, r.error ? `threw ${r.error}` : sameFields(r.value, a.expect));
  }
  // why the legacy format exists: a leading { is read as a block
  const bare = attempt(() => evalInPage(t));
  report(a.label, "bare eval(t) throws",
    "error" in bare ? null : `did not throw: ${JSON.stringify(bare.value)}`);
}

function checkJsonp(a) {
  let calls = 0;
  let got;
  const r = attempt(() => evalInPage(a.body, jsonpGlobals(a.callback, (o) => { calls += 1; got = o; })));
  report(a.label, `<script> calling ${a.callback}`, r.error ? `threw ${r.error}`
    : calls !== 1 ? `callback called ${calls} times` : sameFields(got, a.expect));
}

function checkLegacy(a) {
  const t = a.body;
  const parsers = {
    "bare eval(t)": () => evalInPage(t),
    "eval('(' + t + ')')": () => evalInPage("(" + t + ")"),
    "eval('new Object(' + t + ')')": () => evalInPage("new Object(" + t + ")"),
  };
  for (const [name, parse] of Object.entries(parsers)) {
    const r = attempt(parse);
    report(a.label, name, r.error ? `threw ${r.error}` : sameFields(r.value, a.expect));
  }
}

function xmlText(doc, name) {
  const nodes = doc.getElementsByTagName(name);
  return nodes.length ? nodes[0].firstChild.nodeValue : undefined;
}

function checkXml(a) {
  if (a.expect.state === "starting") {
    // lighttpd 1.4's pages compared the plain text
    report(a.label, "responseText == 'not in progress'",
      a.body === "not in progress" ? null : `body ${JSON.stringify(a.body)}`);
    return;
  }
  const r = attempt(() => new DOMParser({ onError: (level, msg) => { throw new Error(msg); } })
    .parseFromString(a.body, "text/xml"));
  if (r.error) {
    report(a.label, "DOMParser", `threw ${r.error}`);
    return;
  }
  const doc = r.value;
  const got = { state: xmlText(doc, "state") };
  for (const key of ["received", "size", "status"]) {
    const text = xmlText(doc, key);
    if (text !== undefined) got[key] = Number(text);
  }
  const root = doc.documentElement.nodeName;
  report(a.label, "DOMParser", root !== "upload" ? `root <${root}>` : sameFields(got, a.expect));
}

const check = { json: checkJson, jsonp: checkJsonp, legacy: checkLegacy, xml: checkXml };
for (const a of answers) {
  if (!check[a.format]) {
    report(a.label, "format", `unknown format ${a.format}`);
    continue;
  }
  check[a.format](a);
}
console.log(`${answers.length} answers, ${failures} failed`);
process.exit(failures ? 1 : 0);
