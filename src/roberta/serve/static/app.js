// The try-it page: asks /info which task is served, posts the text to /predict, renders the pipeline's answer.
// Plain DOM code, no build step. Every rendered piece has a class the browser test reads.
"use strict";

const $ = (id) => document.getElementById(id);
let task = null;

// Per task: the request parameters, and how to draw the answer.
const TASKS = {
  "fill-mask": { parameters: { top_k: 5 }, render: (r) => ranked(flatFirst(r).map((x) => [x.token_str, x.score])) },
  "text-classification": { parameters: { top_k: null }, render: (r) => ranked(r.map((x) => [x.label, x.score])) },
  "token-classification": { parameters: { aggregation_strategy: "simple" }, render: (r, text) => spans(text, r) },
  "question-answering": { parameters: {}, render: (r, text, context) => answer(context, r) },
  "feature-extraction": { parameters: { pooling: "mean" }, render: (r) => vector(r) },
};

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function flatFirst(r) {  // several <mask> tokens give one list per mask: show the first mask's candidates
  return Array.isArray(r[0]) ? r[0] : r;
}

function ranked(pairs) {  // [[label, score]] -> rows with score bars, best first
  const box = el("div", "ranked");
  for (const [label, score] of pairs) {
    const row = el("div", "row");
    row.append(el("span", "label", label));
    const bar = el("div", "bar");
    const fill = el("div");
    fill.style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
    bar.append(fill);
    row.append(bar, el("span", "score", score.toFixed(4)));
    box.append(row);
  }
  return box;
}

function highlighted(text, marks) {  // marks: [{start, end, tag, title}] -> text with <mark> spans
  const box = el("div", "text");
  let at = 0;
  for (const m of [...marks].sort((a, b) => a.start - b.start)) {
    if (m.start < at || m.end == null) continue;  // overlapping or offset-less: skip
    box.append(document.createTextNode(text.slice(at, m.start)));
    const mark = el("mark", "span", text.slice(m.start, m.end));
    mark.title = m.title;
    if (m.tag) mark.append(el("span", "tag", m.tag));
    box.append(mark);
    at = m.end;
  }
  box.append(document.createTextNode(text.slice(at)));
  return box;
}

function spans(text, entities) {
  const marks = entities.map((e) => ({ start: e.start, end: e.end, tag: e.entity_group || e.entity,
                                       title: `score ${e.score.toFixed(4)}` }));
  const box = highlighted(text, marks);
  if (!entities.length) box.append(el("p", "muted empty", "no entities"));
  return box;
}

function answer(context, r) {
  const best = Array.isArray(r) ? r[0] : r;
  const box = el("div");
  box.append(el("p", "answer", best.answer), el("p", "muted score", `score ${best.score.toFixed(4)}`));
  box.append(highlighted(context, [{ start: best.start, end: best.end, tag: "", title: "answer" }]));
  return box;
}

function vector(r) {
  const box = el("div");
  box.append(el("p", "dims", `${r.length} dimensions`));
  box.append(el("pre", "values", r.slice(0, 8).map((v) => v.toFixed(4)).join(" ") + (r.length > 8 ? " …" : "")));
  return box;
}

async function submit(event) {
  event.preventDefault();
  const text = $("text").value;
  const context = $("context").value;
  const inputs = task === "question-answering" ? { question: text, context } : text;
  $("status").textContent = "running…";
  $("result").replaceChildren();
  try {
    const response = await fetch("/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs, parameters: TASKS[task].parameters }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    $("result").append(TASKS[task].render(body, text, context));
    $("status").textContent = "";
  } catch (err) {
    $("result").append(el("p", "error", String(err.message || err)));
    $("status").textContent = "";
  }
}

async function init() {
  const info = await (await fetch("/info")).json();
  task = info.task;
  $("task").textContent = task;
  $("model").textContent = `model: ${info.model}`;
  if (task === "question-answering") {
    $("text-label").textContent = "Question";
    $("qa").hidden = false;
  } else if (task === "fill-mask") {
    $("text").placeholder = "The capital of France is <mask>.";
  }
  $("form").addEventListener("submit", submit);
  $("submit").disabled = false;
}

init();
